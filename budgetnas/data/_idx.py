"""IDX files (the MNIST / Fashion-MNIST format), raw or gzipped."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from budgetnas.data._arrays import from_arrays
from budgetnas.data._types import ImageData
from budgetnas.errors import DataError

# IDX type codes -> big-endian numpy dtypes ("THE IDX FILE FORMAT", yann.lecun.com/exdb/mnist/)
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """All bytes of ``path``, gunzipped when it starts with the gzip magic (whatever its name)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"no such file: {p}" + (" (it is a folder)" if p.is_dir() else "") + "; check the path"
        )
    try:
        with open(p, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == _GZIP_MAGIC:
                with gzip.GzipFile(fileobj=f) as gz:
                    return gz.read()
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(
            f"{p} is a damaged or truncated gzip file ({exc}); download it again"
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc}; check the path and its permissions") from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzipped, told apart by its first bytes) into a native-endian array.

    Checks the magic number (two zero bytes, a type code, the number of dimensions) and that the
    file holds exactly as many values as its dimensions say.

    Example:
        >>> x = read_idx("t10k-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> x.shape, x.dtype  # doctest: +SKIP
        ((10000, 28, 28), dtype('uint8'))
    """
    p = Path(path)
    raw = read_file_bytes(p)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{p} is not an IDX file (it should start with two zero bytes, a type code and the "
            f"number of dimensions; it starts with {raw[:4].hex() or 'nothing'}); "
            "pass an MNIST-style idx file such as train-images-idx3-ubyte.gz"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise DataError(
            f"{p} has IDX type code 0x{code:02X}, which is not one of {known}; "
            "the file is damaged or not an IDX file"
        )
    if ndim == 0:
        raise DataError(f"{p} declares 0 dimensions; the file is damaged, download it again")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(
            f"{p} is truncated: its header needs {header_len} bytes but the file has "
            f"{len(raw)}; download it again"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        shape = "x".join(map(str, dims))
        problem = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{p} is {problem}: a {shape} array of {dtype.name} needs {expected} bytes of data "
            f"but the file has {actual}; download it again"
        )
    arr = np.frombuffer(raw, dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def load_idx_pair(
    images_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    name: str | None = None,
) -> ImageData:
    """Images and labels from two IDX files, e.g. ``train-images-idx3-ubyte.gz`` and its labels.

    With ``classes``, integer labels are indices into it; ``name`` defaults to the images folder's
    name.

    Example:
        >>> folder = "/usr/share/datasets/fashion-mnist/"
        >>> d = load_idx_pair(folder + "t10k-images-idx3-ubyte.gz",  # doctest: +SKIP
        ...                   folder + "t10k-labels-idx1-ubyte.gz")
        >>> d.shape  # doctest: +SKIP
        (1, 28, 28)
    """
    images, labels = read_idx_pair(images_path, labels_path)
    if name is None:
        name = Path(images_path).resolve().parent.name or "idx"
    return from_arrays(images, labels, classes=classes, name=name)


def read_idx_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` arrays from two IDX files, checked to belong together."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise DataError(
            f"{images_path} holds a {images.ndim}-D array of shape {images.shape}; an images "
            "file must be (N, H, W) or (N, H, W, C). Did you swap the images and labels files?"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{labels_path} holds a {labels.ndim}-D array of shape {labels.shape}; a labels "
            "file must be 1-D. Did you swap the images and labels files?"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            "labels; pass the labels file that belongs to these images"
        )
    return images, labels
