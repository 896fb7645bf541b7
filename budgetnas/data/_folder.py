"""Image folders: one subfolder per class, read with Pillow."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from budgetnas.data._arrays import _check_classes
from budgetnas.data._types import ImageData
from budgetnas.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_IGNORED_DIRS = {"__MACOSX"}  # resource forks left by macOS zip/tar tools


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_DIRS


def _is_image(name: str) -> bool:
    return not _is_hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = size
        ok = all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in (h, w)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(
            f"size must be (height, width) in pixels (or one int for a square), got {size!r}; "
            "e.g. size=(32, 32)"
        )
    return int(h), int(w)


def _gray_array(im: Any) -> np.ndarray:
    """uint8 (H, W) from any single-channel Pillow mode (16-bit and float ones scaled sensibly)."""
    if im.mode in ("1", "L", "LA"):
        return np.asarray(im.convert("L"))
    a = np.asarray(im)
    if a.dtype.kind == "f":
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if im.mode.startswith("I;16") or a.max(initial=0) > 255:  # 16-bit samples: keep the top byte
        return (np.clip(a, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
    return np.clip(a, 0, 255).astype(np.uint8)


def _decode(path: str, want: str | None) -> np.ndarray | str:
    """uint8 (H, W) or (H, W, 3) array, or the reason the file could not be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _GRAY_MODES:
                a = _gray_array(im)
                return a if want != "RGB" else np.repeat(a[:, :, None], 3, axis=2)
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            if want == "L":
                return np.asarray(im.convert("L"))
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - any undecodable file is skipped and reported once
        return f"{type(exc).__name__}: {exc}"


def _resize(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = hw
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR))


def _list_files(root: Path, class_names: Sequence[str]) -> list[tuple[str, int]]:
    files: list[tuple[str, int]] = []
    for label, cname in enumerate(class_names):
        folder = root / cname
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
            images = [os.path.join(dirpath, f) for f in sorted(filenames) if _is_image(f)]
            files.extend((f, label) for f in images)
    return files


def load_image_folder(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | int | None = None,
    grayscale: bool | None = None,
    classes: Sequence[str] | None = None,
) -> ImageData:
    """Read ``path/<class>/<image>`` files (JPEG, PNG, BMP, GIF, WebP) into uint8 ImageData.

    Classes are the sorted subfolder names (or ``classes``, e.g. the training set's when reading
    its test folder). Hidden files are ignored; files that cannot be decoded are skipped and
    reported in one warning. Images are resized to ``size`` = (height, width) when given, else to
    the most common size (with a warning). ``grayscale=None`` gives one channel when every image is
    grayscale and RGB otherwise; True/False force one or three channels.

    Example:
        >>> d = load_image_folder("flowers/", size=(64, 64))  # doctest: +SKIP
        >>> d.shape  # doctest: +SKIP
        (3, 64, 64)
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"no such folder: {root}; check the path")
    if not root.is_dir():
        raise DataError(
            f"{root} is a file, not a folder; load_image_folder reads a folder with one subfolder "
            "per class (e.g. root/cat/1.jpg). For an archive or a data file use load_dataset(path)"
        )
    hw = _check_size(size)
    if grayscale not in (None, True, False):
        raise DataError(f"grayscale must be None, True or False, got {grayscale!r}")
    want = None if grayscale is None else ("L" if grayscale else "RGB")
    subdirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name))

    if classes is not None:
        class_names = list(_check_classes(classes))
        unknown = [d for d in subdirs if d not in class_names]
        if unknown:
            raise DataError(
                f"{root} has folder(s) {unknown[:5]} that are not among the given classes "
                f"{tuple(class_names)}; remove them or add them to classes"
            )
    else:
        if not subdirs:
            loose = sum(1 for f in root.iterdir() if f.is_file() and _is_image(f.name))
            found = f" (it holds {loose} images directly)" if loose else ""
            raise DataError(
                f"no class subfolders in {root}{found}; put each class's images in its own "
                f"subfolder, e.g. {root / 'cat' / '001.jpg'} and {root / 'dog' / '001.jpg'}"
            )
        if len(subdirs) < 2:
            raise DataError(
                f"found a single class {subdirs[0]!r} in {root}; a classifier needs at least two: "
                "add a subfolder of images for each other class"
            )
        class_names = subdirs

    files = _list_files(root, class_names)
    if not files:
        raise DataError(
            f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {root}; "
            "check the path and the file extensions"
        )
    # Sequential on purpose: for small images (CIFAR's 32x32: ~0.12 ms each, 10,000 in 1.2 s on
    # 2 CPU cores, 2026-11) Pillow's Python-side overhead dominates and a thread pool was slower.
    decoded = [_decode(f, want) for f, _ in files]

    arrays: list[np.ndarray] = []
    labels: list[int] = []
    failed: list[tuple[str, str]] = []
    for (fpath, label), a in zip(files, decoded):
        if isinstance(a, str):
            failed.append((fpath, a))
        else:
            arrays.append(a)
            labels.append(label)
    if failed:
        example, reason = failed[0]
        warnings.warn(
            f"skipped {len(failed)} of {len(files)} files that could not be read, e.g. "
            f"{example} ({reason}); delete or replace them",
            stacklevel=2,
        )
    if not arrays:
        raise DataError(
            f"none of the {len(files)} image files in {root} could be read; "
            "check that they are valid images"
        )

    class_names, labels_arr = _drop_empty_classes(root, class_names, np.asarray(labels), classes)

    counts = Counter(a.shape[:2] for a in arrays)
    if hw is None and len(counts) > 1:
        hw = max(counts, key=lambda s: (counts[s], s[0] * s[1], s))
        n_resized = len(arrays) - counts[hw]
        warnings.warn(
            f"images in {root} have {len(counts)} different sizes; resized {n_resized} of "
            f"{len(arrays)} to {hw[0]}x{hw[1]} (the most common size). Pass size=(height, width) "
            "to load_image_folder to choose the size (a search then resizes to its --resolution)",
            stacklevel=2,
        )
    if hw is None:
        hw = next(iter(counts))
    channels = 1 if want == "L" or (want is None and all(a.ndim == 2 for a in arrays)) else 3
    out = np.empty((len(arrays), channels, hw[0], hw[1]), np.uint8)
    for i, a in enumerate(arrays):
        if a.shape[:2] != hw:
            a = _resize(a, hw)
        if a.ndim == 2:
            out[i] = a  # broadcasts gray over 1 or 3 channels
        else:
            out[i] = a.transpose(2, 0, 1)
    return ImageData(out, labels_arr, tuple(class_names), root.name)


def _drop_empty_classes(
    root: Path, class_names: list[str], labels: np.ndarray, given: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [c for c, n in zip(class_names, counts) if n == 0]
    if not empty:
        return class_names, labels
    if given is not None:
        warnings.warn(
            f"class(es) {empty[:5]} have no readable images in {root}; they stay in classes "
            "(as given) with zero samples",
            stacklevel=3,
        )
        return class_names, labels
    kept = [c for c, n in zip(class_names, counts) if n > 0]
    if len(kept) < 2:
        raise DataError(
            f"only class {kept[0]!r} in {root} has readable images (folders {empty[:5]} have "
            "none); a classifier needs at least two classes: add images to those folders"
        )
    warnings.warn(
        f"class folder(s) {empty[:5]} in {root} hold no readable images and were left out; "
        f"{len(kept)} classes remain",
        stacklevel=3,
    )
    remap = np.cumsum(counts > 0) - 1
    return kept, remap[labels]
