"""CIFAR-10 "python version" batches, read with a restricted unpickler (pickles can run code)."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from budgetnas.data._types import DataSplits, ImageData
from budgetnas.errors import DataError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCH = "test_batch"
_META = "batches.meta"
_WANTED = set(_TRAIN_BATCHES) | {_TEST_BATCH, _META}


def _numpy_reconstruct() -> Any:
    core = getattr(np, "_core", None)  # numpy >= 2 (numpy.core is a deprecated alias there)
    if core is None:  # pragma: no cover - numpy 1.x
        core = np.core
    return core.multiarray._reconstruct


def _latin1_encode(text: Any, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode``: how Python 3 writes bytes in protocol-2 pickles.

    Only ``(str, "latin1")`` is accepted, so the name cannot reach any other codec.
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise DataError(
            f"the CIFAR loader refuses _codecs.encode with {type(text).__name__} and "
            f"{encoding!r}: CIFAR archives contain only arrays; this file may be malicious"
        )
    return text.encode("latin1")


def _array_from_buffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Stand-in for numpy's ``_frombuffer``, how protocol-5 pickles (Python 3.14's default) store
    arrays: bytes and a plain (non-object) dtype only."""
    dt = np.dtype(dtype) if isinstance(dtype, np.dtype) else None
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) or dt is None or dt.hasobject:
        raise DataError(
            "the CIFAR loader refuses a protocol-5 array that is not plain bytes of a numeric "
            "dtype: CIFAR archives contain only arrays; this file may be malicious"
        )
    return np.frombuffer(buf, dtype=dt).reshape(shape, order="F" if order == "F" else "C")


_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): lambda: _latin1_encode,
    ("numpy.core.numeric", "_frombuffer"): lambda: _array_from_buffer,
    ("numpy._core.numeric", "_frombuffer"): lambda: _array_from_buffer,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class _CifarUnpickler(pickle.Unpickler):
    """Loads dicts of bytes, lists and numpy arrays, and refuses every other global.

    Allowed: numpy's array reconstruction (``_reconstruct``, ``ndarray``, ``dtype``; protocol 5's
    ``_frombuffer`` through a checked stand-in) and a latin-1-only ``_codecs.encode`` (Python 3
    protocol-2 pickles spell bytes that way; the original Python 2 batches need none of it).
    """

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise DataError(
                f"{self._source}: the CIFAR loader refuses to load global {module}.{name}: CIFAR "
                "archives contain only arrays; this file may be malicious or is not a CIFAR-10 "
                "batch. Re-download cifar-10-python.tar.gz from the official site"
            )
        return factory()


def _unpickle(data: bytes, source: str) -> dict[Any, Any]:
    try:
        obj = _CifarUnpickler(io.BytesIO(data), source).load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed pickle is a data problem
        raise DataError(
            f"{source} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); "
            "the archive may be damaged: download it again"
        ) from exc
    if not isinstance(obj, dict):
        raise DataError(
            f"{source} holds a {type(obj).__name__}, not a CIFAR-10 batch dict; "
            "pass the cifar-10-python archive"
        )
    return obj


def _get(d: dict[Any, Any], key: str) -> Any:
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def _batch_arrays(d: dict[Any, Any], source: str) -> tuple[np.ndarray, np.ndarray]:
    data, labels = _get(d, "data"), _get(d, "labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(
            f"{source} has no 'data' array or 'labels' list; it is not a CIFAR-10 batch "
            "(CIFAR-100 archives use 'fine_labels' and are not read here)"
        )
    labels_arr = np.asarray(labels)
    n = len(labels_arr)
    if data.dtype != np.uint8 or data.shape != (n, 3072) or labels_arr.ndim != 1:
        raise DataError(
            f"{source}: expected {n} rows of 3072 uint8 pixels, got an array of shape "
            f"{data.shape} and dtype {data.dtype}; the archive is damaged: download it again"
        )
    if labels_arr.dtype.kind not in "iu" or (n and (labels_arr.min() < 0 or labels_arr.max() > 9)):
        raise DataError(f"{source}: labels must be integers 0..9; the archive is damaged")
    return data.reshape(n, 3, 32, 32), labels_arr.astype(np.int64)


def _read_members(path: Path) -> dict[str, tuple[bytes, str]]:
    """{basename: (bytes, where it came from)} for the CIFAR files in a folder or a tar archive."""
    found: dict[str, tuple[bytes, str]] = {}
    if path.is_dir():
        folder = path
        if not (folder / _TRAIN_BATCHES[0]).is_file() and (folder / "cifar-10-batches-py").is_dir():
            folder = folder / "cifar-10-batches-py"
        for name in _WANTED:
            f = folder / name
            if f.is_file():
                found[name] = (f.read_bytes(), str(f))
        return found
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in _WANTED and base not in found:
                    fobj = tf.extractfile(member)
                    if fobj is not None:
                        found[base] = (fobj.read(), f"{path}:{member.name}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(
            f"cannot read {path} as a tar archive ({exc}); pass cifar-10-python.tar.gz or the "
            "cifar-10-batches-py folder, and download it again if it is damaged"
        ) from exc
    return found


def load_cifar10_archive(path: str | os.PathLike[str]) -> DataSplits:
    """CIFAR-10 from ``cifar-10-python.tar.gz`` (read in memory) or ``cifar-10-batches-py/``.

    The batches are pickles, which can run code when loaded; they are read with an unpickler that
    accepts only numpy arrays, so a tampered file raises :class:`DataError` instead.

    Example:
        >>> splits = load_cifar10_archive("cifar-10-python.tar.gz")  # doctest: +SKIP
        >>> len(splits.train), len(splits.test), splits.train.shape  # doctest: +SKIP
        (50000, 10000, (3, 32, 32))
    """
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"no such file or folder: {p}; pass cifar-10-python.tar.gz or the cifar-10-batches-py "
            "folder (https://www.cs.toronto.edu/~kriz/cifar.html)"
        )
    found = _read_members(p)
    missing = [n for n in (*_TRAIN_BATCHES, _TEST_BATCH) if n not in found]
    if missing:
        what = "no CIFAR-10 batches" if len(missing) == 6 else f"no {', '.join(missing)}"
        if len(missing) == 6 and (
            (p / "cifar-100-python").is_dir()
            or (p / "meta").is_file()
            or (p.is_file() and is_cifar100_python_archive(p))
        ):
            what += " (it looks like CIFAR-100's python archive, which is not read yet)"
        raise DataError(
            f"{p} has {what}; a CIFAR-10 python archive holds data_batch_1..5 and test_batch "
            "(cifar-10-python.tar.gz). Download it again, or pass an image folder to "
            "load_dataset instead"
        )
    classes = CIFAR10_CLASSES
    if _META in found:
        meta = _unpickle(*found[_META])
        names = _get(meta, "label_names")
        if names is not None:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
            if len(classes) != 10:
                raise DataError(
                    f"{found[_META][1]} names {len(classes)} classes, CIFAR-10 has 10; "
                    "the archive is damaged or not CIFAR-10"
                )
    parts = [_batch_arrays(_unpickle(*found[n]), found[n][1]) for n in _TRAIN_BATCHES]
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    x_test, y_test = _batch_arrays(_unpickle(*found[_TEST_BATCH]), found[_TEST_BATCH][1])
    return DataSplits(
        train=ImageData(x_train, y_train, classes, "cifar10"),
        test=ImageData(x_test, y_test, classes, "cifar10-test"),
    )


def _first_tar_files(path: Path, n: int = 8) -> list[str]:
    """The names of a tar archive's first ``n`` files (reads no further); [] if it is none."""
    names: list[str] = []
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                if member.isfile():
                    names.append(member.name)
                    if len(names) >= n:
                        break
    except (tarfile.TarError, EOFError, OSError):
        return []
    return names


def is_cifar100_python_archive(path: Path) -> bool:
    """True when a tar archive's first files are CIFAR-100's (``cifar-100-python/train``...)."""
    return any("cifar-100-python" in name.split("/")[:-1] and name.rsplit("/", 1)[-1] in ("train", "test", "meta")
               for name in _first_tar_files(path))


def is_cifar_python_archive(path: Path) -> bool:
    """True when a tar archive's first files are CIFAR python batches (reads only the first few)."""
    return any(name.rsplit("/", 1)[-1] in _WANTED for name in _first_tar_files(path))
