"""``load_dataset``: known dataset names, and paths to folders, .npz files and archives."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import logging
import os
import shutil
import stat
import tarfile
import time
import warnings
import zipfile
from typing import Any
from pathlib import Path, PurePosixPath

import numpy as np

from budgetnas.data._arrays import check_same_scale, encode_labels, from_arrays, label_column
from budgetnas.data._cifar import (
    is_cifar100_python_archive,
    is_cifar_python_archive,
    load_cifar10_archive,
)
from budgetnas.data._folder import _is_hidden, in_one_unit, load_image_folder
from budgetnas.data._idx import load_idx_pair, read_idx_pair
from budgetnas.data._types import DataSplits
from budgetnas.errors import DataError, user_stacklevel

log = logging.getLogger("budgetnas")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MNIST_CLASSES = tuple(str(i) for i in range(10))
KNOWN_DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10")
_ALIASES = {
    "digits": "digits",
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "mnist": "mnist",
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}


def dataset_name(value: object) -> str | None:
    """The named dataset ``value`` spells (any case, surrounding spaces, the aliases above), or
    None: a path. (Two places told names from paths apart two ways: a run searched on "cifar-10"
    had its name taken for a relative path: a review, 2026-12-08.)"""
    return _ALIASES.get(value.strip().lower()) if isinstance(value, str) else None


# Where operating systems install the data (Debian: `apt-get install dataset-fashion-mnist`).
_SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (),
}
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")
_COMPLETE = ".budgetnas-complete"


def load_dataset(
    name_or_path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
    channels_last: bool | None = None, max_side: int | None = None,
) -> DataSplits:
    """Load a known dataset by name, or a dataset from a path; returns train (and test) splits.

    Names (any case): ``digits`` (scikit-learn's 8x8 digits, no test split), ``fashion-mnist`` and
    ``mnist`` (IDX files in ``root``, ``$BUDGETNAS_DATA/<name>``, or for Fashion-MNIST Debian's
    ``/usr/share/datasets/fashion-mnist``), ``cifar10`` (in ``root`` or ``$BUDGETNAS_DATA/cifar10``:
    train/ and test/ image folders, cifar-10-python.tar.gz, cifar-10-batches-py, or a .tar.gz of
    image folders). A name wins over a same-named folder; write ``./digits`` for the folder.

    Paths: a folder with ``train/`` and ``test/`` image folders (also spelled ``Training/``,
    ``Testing/``, ``train_set/``, ``test_set/``...), a plain image folder (no test split), a folder
    of the four MNIST-style IDX files, a ``.npz`` with ``x_train, y_train[, x_test, y_test]`` (or ``x, y``), or a tar archive
    of those (extracted once into ``$BUDGETNAS_CACHE``, default ``~/.cache/budgetnas``). A relative
    path is looked up under ``root`` when ``root`` is given. ``channels_last`` says how a .npz's
    4-D arrays are laid out (None: ``(N, H, W, C)``, with a warning when they look channels-first).
    ``max_side`` shrinks larger images in image folders while they are read (see
    :func:`load_image_folder`).

    Example:
        >>> splits = load_dataset("digits")  # doctest: +SKIP
        >>> len(splits.train), splits.train.shape, splits.test  # doctest: +SKIP
        (1797, (1, 8, 8), None)
    """
    if isinstance(name_or_path, str) and not name_or_path.strip():
        raise DataError("the dataset name is empty; give a name (digits, fashion-mnist, mnist, cifar10), "
                        "an image folder or a .npz file")
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise DataError(
            f"load_dataset takes a dataset name or a path, got a {type(name_or_path).__name__}; "
            f"known names: {', '.join(KNOWN_DATASETS)}. For arrays use from_arrays(x, y)"
        )
    if root is not None and not Path(root).expanduser().exists():
        raise DataError(f"the data root {root} does not exist (root=, --data-root on the command line); "
                        "check the path")
    key = dataset_name(name_or_path)
    if key == "digits":
        return _load_digits()
    if key in ("fashion-mnist", "mnist"):
        return _load_idx_dataset(key, root)
    if key == "cifar10":
        return _load_cifar10(root, max_side)
    path = Path(name_or_path).expanduser()
    if root is not None and not path.is_absolute():
        path = Path(root).expanduser() / path
    if path.exists():
        return _load_path(path, channels_last, max_side)
    raise DataError(
        f"unknown dataset {str(name_or_path)!r}: it is not a known name "
        f"({', '.join(KNOWN_DATASETS)}) and there is no file or folder at {path.absolute()}; "
        "pass one of those names or the path to your data"
    )


# ----------------------------------------------------------------------------- named datasets


def _digits_csv() -> Path | None:
    """The table scikit-learn installs for ``load_digits`` (``sklearn/datasets/data/digits.csv.gz``),
    found without importing scikit-learn; None where scikit-learn or the file is not there."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: (N, 8, 8) images with values 0..16, and labels.

    Read straight from scikit-learn's own file where it is as expected: importing scikit-learn
    (scipy with it) takes about 1.4 s on a 2-core CPU, more than the demo's first trial, for a
    1,797-row table. Through ``load_digits`` where the file is missing or not as expected."""
    path = _digits_csv()
    if path is not None:
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        except Exception:  # noqa: BLE001 - (a damaged gzip stream raises zlib.error): load_digits
            table = None
        if table is not None and table.shape == (1797, 65) and np.all(table == np.rint(table)) \
                and table[:, :-1].min() >= 0 and table[:, :-1].max() <= 16 \
                and set(np.unique(table[:, -1]).tolist()) == set(range(10)):
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DataError(
            "the 'digits' dataset comes with scikit-learn, which is not installed; run "
            "`pip install scikit-learn` (or `pip install budgetnas[demo]`)"
        ) from exc
    bunch = load_digits()
    return np.asarray(bunch.images, np.float64), np.asarray(bunch.target)


def _load_digits() -> DataSplits:
    images, labels = _digits_arrays()
    images = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
    train = from_arrays(images, labels, classes=MNIST_CLASSES, name="digits")
    return DataSplits(train=train, test=None)


def _idx_file(folder: Path, stem: str) -> Path | None:
    """``stem[.gz]`` in ``folder``, also spelled ``train-images.idx3-ubyte`` (Kaggle's copies)."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, dotted):
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


def _data_env_dir(key: str) -> Path | None:
    base = os.environ.get("BUDGETNAS_DATA")
    return Path(base).expanduser() / key if base else None


def _idx_files(folder: Path) -> tuple[dict[str, Path] | None, str]:
    """The four IDX files in ``folder``, or None and why not."""
    if not folder.is_dir():
        return None, f"{folder} (no such folder)"
    files = {k: _idx_file(folder, stem) for k, stem in _IDX_FILES.items()}
    missing = [f"{_IDX_FILES[k]}[.gz]" for k, v in files.items() if v is None]
    if missing:
        return None, f"{folder} (missing {', '.join(missing)})"
    return files, str(folder)  # type: ignore[return-value]


def _load_idx_dataset(key: str, root: str | os.PathLike[str] | None) -> DataSplits:
    env_dir = _data_env_dir(key)
    elsewhere = ([env_dir] if env_dir is not None else []) + list(_SYSTEM_DIRS.get(key, ()))
    # A root given is the only place looked: a typo in it fell back to the installed copy unsaid, and
    # the run recorded the root it did not read (review A, 2026-12-07).
    candidates = [Path(root).expanduser(), Path(root).expanduser() / key] if root is not None else elsewhere
    looked: list[str] = []
    for folder in candidates:
        files, why = _idx_files(folder)
        if files is None:
            looked.append(why)
            continue
        classes = FASHION_MNIST_CLASSES if key == "fashion-mnist" else MNIST_CLASSES
        train = load_idx_pair(files["train_x"], files["train_y"], classes=classes, name=key)
        test = load_idx_pair(files["test_x"], files["test_y"], classes=classes, name=f"{key}-test")
        return DataSplits(train=train, test=test)
    where = "; ".join(looked) if looked else "nowhere (no root given and BUDGETNAS_DATA is not set)"
    if root is not None:
        other = next((f for f in elsewhere if _idx_files(f)[0] is not None), None)
        if other is not None:
            raise DataError(f"{key} not found in the root given; looked in: {where}. A copy is at {other}: leave "
                            "the root out (--data-root on the command line) to use it, or give the folder that "
                            f"holds the four {key} IDX files")
    if key == "fashion-mnist":
        fix = (
            "Install it with `apt-get install dataset-fashion-mnist`, or when online call "
            "budgetnas.data.download_fashion_mnist(dest) and pass root=dest (--data-root dest on the "
            "command line)"
        )
    else:
        fix = (
            "Put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
            "and t10k-labels-idx1-ubyte.gz in a folder and pass root=<folder> (--data-root on the "
            "command line)"
        )
    raise DataError(
        f"{key} not found; looked in: {where}. {fix} (or set BUDGETNAS_DATA to a folder holding "
        f"{key}/)"
    )


def _load_cifar10(root: str | os.PathLike[str] | None, max_side: int | None = None) -> DataSplits:
    candidates: list[Path] = []
    if root is not None:
        candidates += [Path(root).expanduser(), Path(root).expanduser() / "cifar10"]
    env_dir = _data_env_dir("cifar10")
    if env_dir is not None and root is None:  # (a root given is the only place looked, as for the IDX sets)
        candidates.append(env_dir)
    looked = []
    for place in candidates:
        splits = _try_cifar10(place, max_side)
        if splits is not None:
            return splits
        looked.append(str(place) + ("" if place.exists() else " (does not exist)"))
    where = "; ".join(looked) if looked else "nowhere (no root given and BUDGETNAS_DATA is not set)"
    raise DataError(
        f"CIFAR-10 not found; looked in: {where}. Pass root= (--data-root on the command line) a "
        "folder with train/ and test/ image folders, cifar-10-python.tar.gz, the cifar-10-batches-py "
        "folder, or a .tar.gz of train/ and test/ image folders (or set BUDGETNAS_DATA to a folder "
        "holding cifar10/)"
    )


def _try_cifar10(place: Path, max_side: int | None = None) -> DataSplits | None:
    if place.is_file():
        if is_cifar_python_archive(place):
            return load_cifar10_archive(place)
        _refuse_cifar100(place)
        if _is_archive(place):
            return _try_cifar10(extract_archive(place), max_side)
        return None
    if not place.is_dir():
        return None
    if _split_dirs(place) is not None:
        return _rename(_load_split_folders(place, max_side), "cifar10")
    if (place / "data_batch_1").is_file() or (place / "cifar-10-batches-py").is_dir():
        return load_cifar10_archive(place)
    if (place / "cifar-10-python.tar.gz").is_file():
        return load_cifar10_archive(place / "cifar-10-python.tar.gz")
    _refuse_cifar100(place)
    _refuse_cifar100(place / "cifar-100-python")
    archives = sorted(f for f in place.iterdir() if f.is_file() and _is_archive(f))
    if len(archives) == 1:
        return _try_cifar10(archives[0], max_side)
    return None


def _rename(splits: DataSplits, name: str) -> DataSplits:
    train = dataclasses.replace(splits.train, name=name)
    test = None if splits.test is None else dataclasses.replace(splits.test, name=f"{name}-test")
    return DataSplits(train=train, test=test)


# ----------------------------------------------------------------------------- paths


def _load_path(path: Path, channels_last: bool | None = None, max_side: int | None = None) -> DataSplits:
    if path.is_dir():
        if _split_dirs(path) is not None:
            return _load_split_folders(path, max_side)
        if (path / "data_batch_1").is_file() or (path / "cifar-10-batches-py").is_dir():
            return load_cifar10_archive(path)
        _refuse_cifar100(path)
        idx = _idx_folder(path)
        if idx is not None:
            return idx
        return DataSplits(train=load_image_folder(path, max_side=max_side), test=None)
    if path.suffix.lower() == ".npz":
        return _load_npz(path, channels_last)
    if _is_archive(path):
        if is_cifar_python_archive(path):
            return load_cifar10_archive(path)
        _refuse_cifar100(path)
        folder = extract_archive(path)
        entries = [e for e in folder.iterdir() if not _is_hidden(e.name)]
        if len(entries) == 1 and entries[0].is_file() and entries[0].suffix.lower() == ".npz":
            # (a .tar.gz of a .npz, as the error below offers: it was read as an image folder and
            # refused for its want of class folders, the message naming the cache: a review, 2026-12-07)
            return _load_npz(entries[0], channels_last)
        try:
            return _load_path(folder, channels_last, max_side)
        except DataError as e:
            raise DataError(f"{e} (in {path}, extracted into {folder})") from None
    if path.suffix.lower() == ".npy":
        raise DataError(
            f"{path} is a .npy file: it holds one array, and a search needs labels too. Save the images "
            "and labels together: np.savez('data.npz', x_train=images, y_train=labels) (optionally "
            "x_test=..., y_test=...), then --data data.npz"
        )
    if "idx" in path.name.lower() and "ubyte" in path.name.lower():
        raise DataError(
            f"{path} is one IDX file; give the folder that holds all four (train-images-idx3-ubyte, "
            f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally "
            f".gz): --data {path.parent} on the command line, or load_idx_pair(images, labels) in Python"
        )
    raise DataError(
        f"cannot tell how to read {path}: pass a folder with one subfolder per class, a folder "
        "with train/ and test/, a folder of MNIST-style IDX files, a .npz with x_train and y_train, "
        "or a .tar.gz or .zip of those"
    )


# Spellings of the split folders seen in the wild (Kaggle, Keras and torchvision layouts).
_TRAIN_NAMES = ("train", "training", "train_set", "training_set", "trainset", "train-set", "training-set")
_TEST_NAMES = ("test", "testing", "test_set", "testing_set", "testset", "test-set", "testing-set")
_VAL_NAMES = ("val", "valid", "validation", "val_set", "valid_set", "validation_set", "val-set", "dev")


def _has_subfolders(folder: Path) -> bool:
    return any(d.is_dir() and not _is_hidden(d.name) for d in folder.iterdir())


def _split_dirs(path: Path) -> tuple[Path, Path | None] | None:
    """``(train, test or None)`` when ``path`` holds split folders (any case, common spellings):
    a train folder holding class folders, or both a train and a test folder. None for a plain
    class-folder layout (a class may be called "train", as in a vehicles data set: then it holds
    images, not class folders, and there is no test folder beside it)."""
    dirs = {d.name.lower(): d for d in path.iterdir() if d.is_dir() and not _is_hidden(d.name)}
    train = next((dirs[n] for n in _TRAIN_NAMES if n in dirs), None)
    test = next((dirs[n] for n in _TEST_NAMES if n in dirs), None)
    if train is None or (test is None and not _has_subfolders(train)):
        return None
    return train, test


def _idx_folder(path: Path) -> DataSplits | None:
    """The four MNIST-style IDX files in ``path`` as train and test splits, or None if absent."""
    files = {k: _idx_file(path, stem) for k, stem in _IDX_FILES.items()}
    if all(v is None for v in files.values()):
        return None
    missing = [f"{_IDX_FILES[k]}[.gz]" for k, v in files.items() if v is None]
    if missing:
        raise DataError(f"{path} holds IDX files but not {', '.join(missing)}; put all four there")
    x_tr, y_tr = read_idx_pair(files["train_x"], files["train_y"])
    x_te, y_te = read_idx_pair(files["test_x"], files["test_y"])
    y_all = np.concatenate([y_tr, y_te])
    name = path.name or "idx"
    if name.lower() in ("raw", "processed", "data", "files") and path.parent.name:
        name = path.parent.name  # (torchvision's FashionMNIST/raw/, a Kaggle download's data/)
    if y_all.dtype.kind in "iu" and set(np.unique(y_tr).tolist()) == set(range(10)) and y_all.max() < 10:
        # MNIST's digits or Fashion-MNIST's garments (every label 0..9 in training); Fashion-MNIST
        # by its folder's name (not any folder above it) or by its training labels' bytes (its own
        # files in a folder named otherwise were read as digits, unflipped: review E, 2026-12-07)
        fashion = "fashion" in name.lower() or _is_fashion_mnist_labels(files["train_y"])
        names: tuple[str, ...] = FASHION_MNIST_CLASSES if fashion else MNIST_CLASSES
        name = "fashion-mnist" if fashion else name
        codes = y_all.astype(np.int64)
    else:  # any other IDX data set (EMNIST letters 1..26, 3 classes of your own...): the labels present
        codes, names = encode_labels(y_all)
    n = len(y_tr)
    unseen = sorted(set(codes[n:].tolist()) - set(codes[:n].tolist()))
    if unseen:  # (MNIST's own files train on every class; other files' 0..9 labels may not)
        raise DataError(
            f"{path}: the test labels hold class(es) {[names[i] for i in unseen][:10]} that no "
            "training image has; a model cannot learn a class it never sees: check that the "
            "train and t10k files belong together"
        )
    train = from_arrays(x_tr, codes[:n], classes=names, name=name)
    test = from_arrays(x_te, codes[n:], classes=names, name=f"{name}-test")
    return DataSplits(train=train, test=test)


def _is_fashion_mnist_labels(path: Path) -> bool:
    """Whether ``path`` is Fashion-MNIST's training labels file (raw or gzipped), by its sha256."""
    from budgetnas.data._download import FASHION_MNIST_FILES
    from budgetnas.data._idx import read_file_bytes

    return hashlib.sha256(read_file_bytes(path)).hexdigest() == FASHION_MNIST_FILES["train-labels-idx1-ubyte.gz"][1]


def _refuse_cifar100(path: Path) -> None:
    """CIFAR-100's python archive holds files train, test and meta; say so rather than report
    missing class folders (or extract a .tar.gz of it only to find no CIFAR-10 inside)."""
    if (path.is_dir() and (path / "train").is_file() and (path / "meta").is_file()) or (
        _is_archive(path) and is_cifar100_python_archive(path)
    ):
        raise DataError(
            f"{path} looks like CIFAR-100's python archive (files train, test, meta), which budgetnas "
            "does not read yet; only CIFAR-10's (cifar-10-python.tar.gz) is read. Convert it to a .npz "
            "(x_train, y_train, x_test, y_test) or to image folders"
        )


def labelled_val_dir(path: Path) -> Path | None:
    """The labelled validation folder read beside the split folders of ``path`` (Kaggle's and
    ImageNet's train/ + val/ layouts), or None: a folder named val/, valid/, validation/... that
    holds class folders, where ``path`` has a train folder."""
    found = _split_dirs(path)
    if found is None:
        return None
    return next((d for d in sorted(path.iterdir()) if d.is_dir() and d.name.lower() in _VAL_NAMES
                 and d not in found and _has_subfolders(d)), None)


def _load_split_folders(path: Path, max_side: int | None = None) -> DataSplits:
    found = _split_dirs(path)
    assert found is not None, path
    train_dir, test_dir = found
    # A labelled validation folder: the test set where there is no test folder, else more
    # training images (the search draws its own validation split); it was ignored, and its
    # labelled images lost.
    val_dir = labelled_val_dir(path)
    if val_dir is not None and test_dir is None:
        log.info("%s/ holds no test folder: %s/ is the test set", path, val_dir.name)
        test_dir, val_dir = val_dir, None
    extra = sorted(
        d.name
        for d in path.iterdir()
        if d.is_dir() and not _is_hidden(d.name) and d not in (train_dir, test_dir, val_dir)
    )
    if extra:
        warnings.warn(
            f"ignored folder(s) {extra[:5]} in {path}: only {train_dir.name}/ and "
            f"{test_dir.name if test_dir is not None else 'test'}/ are read (the validation split is "
            f"drawn from {train_dir.name}/)",
            stacklevel=user_stacklevel(),
        )
    train = load_image_folder(train_dir, max_side=max_side)
    if val_dir is not None:
        val = _load_like(val_dir, train, train_dir, val_dir.name)
        log.info("%s/ and %s/ both hold labelled images: the %d in %s/ join the training images (the search "
                 "draws its own validation split)", test_dir.name, val_dir.name, len(val), val_dir.name)
        # (a folder of 16-bit images beside one of 8-bit ones: both in one unit, as within a folder)
        train = dataclasses.replace(train, images=in_one_unit(train.images, val.images),
                                    labels=np.concatenate([train.labels, val.labels]))
    train = dataclasses.replace(train, name=path.name or "train")
    test = None
    if test_dir is not None and not _has_subfolders(test_dir):
        loose = sum(1 for f in test_dir.iterdir() if f.is_file() and not _is_hidden(f.name))
        warnings.warn(
            f"{test_dir} holds {loose} file(s) but no class folders, so its images have no labels "
            f"and cannot score the model: it is ignored, and a test split is held out from "
            f"{train_dir.name}/ instead. To use it, sort its images into folders named like "
            f"{train_dir.name}/'s classes",
            stacklevel=user_stacklevel(),
        )
        test_dir = None
    if test_dir is not None:
        test = dataclasses.replace(_load_like(test_dir, train, train_dir, "test"), name=f"{path.name}-test")
    return DataSplits(train=train, test=test)


def _load_like(folder: Path, train: Any, train_dir: Path, label: str) -> Any:
    """The images of ``folder`` read as the training images were: their size, their channels,
    their classes (a test or validation folder beside ``train_dir``)."""
    c, h, w = train.shape
    try:
        return load_image_folder(folder, size=(h, w), grayscale=(c == 1), classes=train.classes)
    except DataError as e:
        # A class folder of train/ whose every file was unreadable is dropped (a warning said so):
        # the fix is there, not in renaming this folder's.
        dropped = sorted(d.name for d in folder.iterdir() if d.is_dir() and (train_dir / d.name).is_dir()
                         and d.name not in train.classes and not _is_hidden(d.name))
        why = (f"; {', '.join(f'{train_dir.name}/{d}/' for d in dropped[:5])} held no readable image, so "
               f"{'that class was' if len(dropped) == 1 else 'those classes were'} left out of training (see the "
               "warning above): replace its unreadable files" if dropped else "")
        raise DataError(f"{e} (in the {label} folder; its class folders must match {train_dir.name}/'s){why}") \
            from None


def _load_npz(path: Path, channels_last: bool | None = None) -> DataSplits:
    import zipfile

    if path.is_file() and not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a .npz archive (np.savez writes a zip file of arrays); save the "
                        "images and labels with np.savez(path, x_train=..., y_train=...)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as exc:
        raise DataError(
            f"{path} holds Python objects (pickled arrays), which are not loaded for safety; "
            "save plain numeric/string arrays with np.savez"
        ) from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read {path} as a .npz file ({exc}); the file is damaged or "
                        "incomplete: save it again with np.savez") from exc
    if "x_train" in arrays and "y_train" in arrays:
        x_tr, y_tr = arrays["x_train"], arrays["y_train"]
        x_te, y_te = arrays.get("x_test"), arrays.get("y_test")
        if (x_te is None) != (y_te is None):
            raise DataError(
                f"{path} has only one of x_test and y_test; save both or neither"
            )
    elif "x" in arrays and "y" in arrays:
        x_tr, y_tr, x_te, y_te = arrays["x"], arrays["y"], None, None
    else:
        raise DataError(
            f"{path} holds arrays {sorted(arrays)}; expected x_train and y_train (optionally "
            "x_test and y_test), or x and y. Save with np.savez(path, x_train=..., y_train=...)"
        )
    given = arrays.get("classes")
    # (bytes, as np.array([b"cat"]) stores them, decoded: not "b'cat'")
    given_names = None if given is None else [c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)
                                           for c in given.tolist()]
    if y_te is None:
        train = from_arrays(x_tr, y_tr, classes=given_names, name=path.stem, channels_last=channels_last)
        _warn_npz_oddities(path, train, None, given is not None)  # (named classes without images: as with a test)
        return DataSplits(train, None)
    # Encode train and test labels together so both use the same class indices.
    # (columns, as keras.datasets gives CIFAR's labels: read as from_arrays reads them, which a .npz
    # without a test split did; with one they were refused: a review, 2026-12-07)
    y_tr, y_te = label_column(np.asarray(y_tr)), label_column(np.asarray(y_te))
    if y_tr.ndim != 1 or y_te.ndim != 1:
        onehot = y_tr.ndim == 2 and y_te.ndim == 2
        raise DataError(
            f"{path}: y_train and y_test must be 1-D (one label per image), got shapes "
            f"{y_tr.shape} and {y_te.shape}"
            + ("; if they are one-hot rows, save y.argmax(axis=1) instead" if onehot else "")
        )
    try:
        y_all = np.concatenate([y_tr, y_te])
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{path}: y_train ({y_tr.dtype}) and y_test ({y_te.dtype}) hold different kinds of "
            "labels; use integers or strings in both"
        ) from exc
    if given is None:
        codes, names = encode_labels(y_all)
    else:
        names = tuple(given_names)
        codes, names = encode_labels(y_all, classes=names)
    unseen = sorted(set(codes[len(y_tr):].tolist()) - set(codes[: len(y_tr)].tolist()))
    if unseen:
        raise DataError(
            f"{path}: y_test has label(s) {[names[i] for i in unseen][:10]} that no training image has; "
            "a model cannot learn a class it never sees: add training images of them or drop those "
            "test images")
    check_same_scale(x_tr, x_te, f"{path.name}'s x_train", "its x_test")
    train = from_arrays(x_tr, codes[: len(y_tr)], classes=names, name=path.stem, channels_last=channels_last)
    test = from_arrays(x_te, codes[len(y_tr) :], classes=names, name=f"{path.stem}-test",
                       channels_last=channels_last)
    _warn_npz_oddities(path, train, test, given is not None)
    return DataSplits(train=train, test=test)


def _warn_npz_oddities(path: Path, train: Any, test: Any, named: bool) -> None:
    """What a .npz may hold by mistake and loads anyway: classes its ``classes`` array names but
    no training image has (a model with outputs never trained), and test images of another size
    than the training ones (resized to the same input, but probably other data)."""
    if named:
        empty = [c for c, n in zip(train.classes, np.bincount(train.labels, minlength=train.num_classes)) if n == 0]
        if empty:
            warnings.warn(f"{path}: its classes array names {len(empty)} class(es) no training image has "
                          f"({empty[:5]}); the model gets an output for each that it never learns: drop them from "
                          "classes, or add their images", stacklevel=user_stacklevel())
    if test is not None and test.shape[1:] != train.shape[1:]:
        warnings.warn(f"{path}: x_test's images are {test.shape[1]}x{test.shape[2]} px, x_train's "
                      f"{train.shape[1]}x{train.shape[2]}; both are resized to the network's input, but "
                      "check that they are the same kind of images", stacklevel=user_stacklevel())


# ----------------------------------------------------------------------------- archives


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def cache_root() -> Path:
    """Where archives are extracted: ``$BUDGETNAS_CACHE`` or ``~/.cache/budgetnas``."""
    env = os.environ.get("BUDGETNAS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "budgetnas"


def _safe_parts(name: str, archive: Path) -> tuple[str, ...]:
    pure = PurePosixPath(name.replace("\\", "/"))
    parts = pure.parts
    if pure.is_absolute() or ".." in parts or (parts and ":" in parts[0]):
        raise DataError(
            f"{archive} holds the member {name!r}, an absolute path or one with '..', which could "
            "write outside the extraction folder; refusing it. The archive may be malicious: "
            "re-create it with relative paths"
        )
    return parts


def extract_archive(archive: Path) -> Path:
    """Extract a tar or zip archive once into the cache and return the folder holding its data.

    The folder is ``<cache>/<archive stem>-<hash8>`` (the hash covers the archive's path, size and
    modification time), written under a temporary name and renamed when complete, so an
    interrupted extraction is never used. A tar's link (hard or symbolic) to a file in the archive
    is written as a copy of that file, read from the archive (never from outside it); other links
    (a zip's among them), loops of links and special files are skipped, with a warning; an
    extraction of the same archive from before links were followed is removed. Members with
    absolute paths or '..' raise
    :class:`DataError`.
    """
    lower = archive.name.lower()
    stem = next(archive.name[: -len(s)] for s in _ARCHIVE_SUFFIXES if lower.endswith(s))
    st = archive.stat()
    # (|links: extractions from before links were followed are made again, and the older one removed)
    key = f"{archive.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()
    older = cache_root() / f"{stem}-{hashlib.blake2b(key, digest_size=4).hexdigest()}"
    target = cache_root() / f"{stem}-{hashlib.blake2b(key + b'|links', digest_size=4).hexdigest()}"
    if (target / _COMPLETE).is_file():
        return _data_root(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        if target.exists():  # left by an interrupted run of an older version: start over
            shutil.rmtree(target)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        skipped: list[str] = []

        def write(parts: tuple[str, ...], src: Any, mtime: float) -> None:
            dest = tmp.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            with contextlib.suppress(OverflowError, OSError, ValueError):  # as tar does: the
                os.utime(dest, (mtime, mtime))  # folder cache reads file times

        if lower.endswith(".zip"):  # (most downloads come zipped; it was "cannot tell how to read": review E)
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    parts = _safe_parts(info.filename, archive)
                    if info.is_dir() or not parts or parts[0] == "__MACOSX":
                        continue
                    if stat.S_ISLNK(info.external_attr >> 16):  # (its data is the link's target path)
                        skipped.append(info.filename)
                        continue
                    write(parts, z.open(info), time.mktime((*info.date_time, 0, 0, -1)))
        else:
            with tarfile.open(archive, "r:*") as tf:
                for member in tf:
                    parts = _safe_parts(member.name, archive)
                    if member.isdir() or not parts or parts[0] == "__MACOSX":
                        continue  # folders are made as needed
                    if not (member.isfile() or member.issym() or member.islnk()):
                        skipped.append(member.name)  # devices, fifos: never written
                        continue
                    try:
                        # (a link's target's data, from the archive: links were skipped unsaid, so a
                        # tree of linked images read as a folder lost them all as an archive, review E)
                        src = tf.extractfile(member)
                    except (KeyError, RecursionError):  # a link to nothing in the archive (outside it,
                        src = None  # say), or a loop of links: never followed
                    if src is None:
                        skipped.append(member.name)
                        continue
                    write(parts, src, member.mtime)
        if skipped:
            warnings.warn(f"{archive}: skipped {len(skipped)} member(s) that are neither files nor links to files "
                          f"in the archive (e.g. {skipped[0]!r}; a zip's links are skipped too); if they are images, "
                          "archive the files themselves",
                          stacklevel=user_stacklevel())
        (tmp / _COMPLETE).write_text(f"extracted from {archive}\n")
        if (older / _COMPLETE).is_file():  # (an extraction from before links were followed: a copy too many)
            shutil.rmtree(older, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first
            if not (target / _COMPLETE).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except DataError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (tarfile.TarError, EOFError, zipfile.BadZipFile) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(
            f"cannot extract {archive} ({exc}); the archive is damaged: download or create it again"
        ) from exc
    except (RuntimeError, NotImplementedError) as exc:  # (zipfile: encrypted, or an unknown compression)
        if not lower.endswith(".zip"):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot extract {archive} ({exc}): unzip it yourself and give the folder") from exc
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(
            f"cannot extract {archive} into {target.parent} ({exc}); free some disk space or set "
            "BUDGETNAS_CACHE to a writable folder with room"
        ) from exc
    return _data_root(target)


def _data_root(folder: Path) -> Path:
    """Descend through single wrapper folders (``archive/cifar10/train`` -> ``archive/cifar10``)."""
    while _split_dirs(folder) is None:
        entries = [e for e in folder.iterdir() if not _is_hidden(e.name)]
        dirs = [e for e in entries if e.is_dir()]
        if len(dirs) == 1 and len(entries) == 1:
            folder = dirs[0]
        else:
            break
    return folder
