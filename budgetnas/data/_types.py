"""The two values the data layer hands out: :class:`ImageData` and :class:`DataSplits`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from budgetnas.errors import DataError

_IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


def _frozen_view(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array``; the caller's own array stays writable."""
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images and integer labels, channels first, ready for the rest of budgetnas.

    ``images`` is ``(N, C, H, W)`` uint8 (0..255) or float32, C-contiguous; ``labels`` is ``(N,)``
    int64 in ``[0, len(classes))``. Both are held as read-only views, so the cached
    :meth:`fingerprint` stays true. Build one with :func:`from_arrays` (it converts and checks
    user input); the constructor only checks the invariants.

    Example:
        >>> import numpy as np
        >>> d = ImageData(np.zeros((4, 1, 8, 8), np.uint8), np.array([0, 1, 0, 1]), ("a", "b"))
        >>> len(d), d.num_classes, d.shape
        (4, 2, (1, 8, 8))
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str = "data"

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.ndim != 4:
            raise DataError(
                f"ImageData.images must be a 4-D numpy array (N, C, H, W), got "
                f"{_describe(images)}; build ImageData with budgetnas.data.from_arrays(x, y), "
                "which converts (N, H, W) and (N, H, W, C) arrays"
            )
        if not images.dtype.isnative:
            images = images.astype(images.dtype.newbyteorder("="))
        if images.dtype not in _IMAGE_DTYPES:
            raise DataError(
                f"ImageData.images must be uint8 or float32, got {images.dtype}; "
                "use budgetnas.data.from_arrays(x, y), which converts other dtypes"
            )
        if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(
                f"ImageData.labels must be a 1-D integer numpy array, got {_describe(labels)}; "
                "use budgetnas.data.from_arrays(x, y), which maps any labels to class indices"
            )
        if len(labels) != len(images):
            raise DataError(
                f"ImageData has {len(images)} images but {len(labels)} labels; "
                "give exactly one label per image"
            )
        classes = tuple(self.classes)
        if not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
            raise DataError(
                f"ImageData.classes must be distinct strings, got {classes!r}; "
                "name each class once"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(
                f"ImageData.labels must lie in [0, {len(classes)}) (one index per class), found "
                f"values from {labels.min()} to {labels.max()}; pass class indices or build the "
                "data with from_arrays(x, y), which maps labels to indices"
            )
        object.__setattr__(self, "images", _frozen_view(np.ascontiguousarray(images)))
        object.__setattr__(self, "labels", _frozen_view(np.ascontiguousarray(labels, np.int64)))
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "name", str(self.name))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageData(name={self.name!r}, n={len(self)}, shape={self.shape}, "
            f"dtype={self.images.dtype}, classes={self.num_classes})"
        )

    @property
    def num_classes(self) -> int:
        """How many classes there are (some may have no samples in a subset)."""
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        _, c, h, w = self.images.shape
        return int(c), int(h), int(w)

    def subset(self, indices: Any) -> ImageData:
        """The images at ``indices`` (integer indices, a boolean mask or a slice), same classes.

        Example:
            >>> import numpy as np
            >>> d = ImageData(np.zeros((4, 1, 8, 8), np.uint8), np.array([0, 1, 0, 1]), ("a", "b"))
            >>> len(d.subset([0, 3]))
            2
        """
        n = len(self)
        if isinstance(indices, slice):
            idx = np.arange(n)[indices]
        else:
            idx = np.asarray(indices)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise DataError(
                        f"a boolean mask for subset() must have shape ({n},), got {idx.shape}; "
                        "give one True/False per image"
                    )
                idx = np.flatnonzero(idx)
            elif idx.size == 0:
                idx = np.zeros(0, np.int64)
            elif idx.dtype.kind not in "iu" or idx.ndim != 1:
                raise DataError(
                    f"subset() takes a 1-D array of integer indices, a boolean mask or a slice, "
                    f"got {_describe(idx)}; pass e.g. np.array([0, 5, 9])"
                )
            elif idx.min() < -n or idx.max() >= n:
                raise DataError(
                    f"subset() index out of range: {self.name!r} has {n} images, got indices from "
                    f"{idx.min()} to {idx.max()}; use indices in [0, {n})"
                )
        return ImageData(self.images[idx], self.labels[idx], self.classes, self.name)

    def fingerprint(self) -> str:
        """Hex blake2b digest (16 bytes) of shape, dtype, image bytes, labels and classes; cached.

        Two ImageData with equal fingerprints hold the same images, labels and class names, so a
        study can refuse to resume on different data.

        Example:
            >>> import numpy as np
            >>> d = ImageData(np.zeros((4, 1, 8, 8), np.uint8), np.array([0, 1, 0, 1]), ("a", "b"))
            >>> len(d.fingerprint())
            32
        """
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        h = hashlib.blake2b(digest_size=16)
        header = {
            "shape": list(self.images.shape),
            "dtype": self.images.dtype.newbyteorder("<").str,
            "classes": list(self.classes),
        }
        h.update(json.dumps(header, sort_keys=True).encode())
        h.update(np.ascontiguousarray(self.images, self.images.dtype.newbyteorder("<")).data)
        h.update(np.ascontiguousarray(self.labels, "<i8").data)
        digest = h.hexdigest()
        self.__dict__["_fingerprint"] = digest
        return digest


@dataclass(frozen=True)
class DataSplits:
    """A training set and, when the source has one, its test set (same classes, same channels);
    ``val``, when given, is the validation set the search scores candidates on, instead of a
    stratified share of ``train`` (the final training then trains on both).

    Example:
        >>> import numpy as np
        >>> d = ImageData(np.zeros((4, 1, 8, 8), np.uint8), np.array([0, 1, 0, 1]), ("a", "b"))
        >>> DataSplits(train=d, test=None).test is None
        True
    """

    train: ImageData
    test: ImageData | None
    val: ImageData | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.train, ImageData) or not all(
            part is None or isinstance(part, ImageData) for part in (self.test, self.val)
        ):
            raise DataError(
                "DataSplits holds ImageData values (test and val may be None); "
                "build them with budgetnas.data.from_arrays"
            )
        for name, part in (("test", self.test), ("validation", self.val)):
            if part is None:
                continue
            if part.classes != self.train.classes:
                raise DataError(
                    f"train and {name} have different classes: {self.train.classes} vs "
                    f"{part.classes}; build the {name} set with classes=train.classes"
                )
            if part.shape[0] != self.train.shape[0]:
                raise DataError(
                    f"train images have {self.train.shape[0]} channel(s) but {name} images have "
                    f"{part.shape[0]}; convert both to the same number of channels"
                )


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"
