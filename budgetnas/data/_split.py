"""Stratified splits and proxy subsets, seeded explicitly (never the global RNG)."""

from __future__ import annotations

import math

import numpy as np

from budgetnas.data._types import ImageData
from budgetnas.errors import DataError


def _check_fraction(fraction: float, *, allow_one: bool, what: str) -> float:
    try:
        f = float(fraction)
    except (TypeError, ValueError):
        f = math.nan
    upper_ok = f <= 1.0 if allow_one else f < 1.0
    if not (f > 0.0 and upper_ok):
        interval = "(0, 1]" if allow_one else "(0, 1)"
        raise DataError(
            f"{what} fraction must be in {interval}, got {fraction!r}; "
            "e.g. 0.1 for a tenth of each class"
        )
    return f


def _check_labels(labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(
            f"labels must be a 1-D integer array of class indices, got shape {arr.shape} and "
            f"dtype {arr.dtype}; pass ImageData.labels"
        )
    if len(arr) and arr.min() < 0:
        raise DataError("labels must be class indices >= 0; pass ImageData.labels")
    return arr


def _per_class_pick(
    labels: np.ndarray, fraction: float, seed: int, *, keep_one: bool
) -> np.ndarray:
    """Sorted indices of about ``fraction`` of each class, drawn with ``default_rng(seed)``.

    ``keep_one=True`` (split): a class of n >= 2 gives between 1 and n - 1, a class of 1 gives 0,
    so both sides of the split see every class that can be split.
    ``keep_one=False`` (subset): every class gives at least 1.
    """
    rng = np.random.default_rng(seed)
    picked = []
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    for start, n in zip(starts.tolist(), counts.tolist()):
        k = int(math.floor(fraction * n + 0.5))
        if keep_one:
            k = min(max(k, 1), n - 1) if n >= 2 else 0
        else:
            k = min(max(k, 1), n)
        if k:
            members = order[start : start + n]
            picked.append(rng.choice(members, size=k, replace=False))
    if not picked:
        return np.zeros(0, np.int64)
    return np.sort(np.concatenate(picked)).astype(np.int64)


def stratified_split(
    labels: np.ndarray, fraction: float, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``(idx_keep, idx_split)``; ``idx_split`` has ~``fraction`` of each class.

    Every class with at least two samples lands on both sides (at least one sample each); a class
    with one sample stays in ``idx_keep``. Deterministic for a given ``seed``; both arrays sorted.

    Example:
        >>> import numpy as np
        >>> keep, val = stratified_split(np.array([0] * 10 + [1] * 10), 0.2, seed=0)
        >>> len(keep), len(val)
        (16, 4)
    """
    arr = _check_labels(labels)
    f = _check_fraction(fraction, allow_one=False, what="split")
    split = _per_class_pick(arr, f, seed, keep_one=True)
    mask = np.ones(len(arr), bool)
    mask[split] = False
    return np.flatnonzero(mask).astype(np.int64), split


def stratified_subset(data: ImageData, fraction: float, *, seed: int) -> ImageData:
    """About ``fraction`` of each class of ``data`` (at least one image each); 1 returns ``data``.

    This is the data-subset proxy of a low-fidelity trial.

    Example:
        >>> import numpy as np
        >>> from budgetnas.data import from_arrays
        >>> d = from_arrays(np.zeros((20, 8, 8), np.uint8), [0] * 10 + [1] * 10)
        >>> len(stratified_subset(d, 0.5, seed=0))
        10
    """
    if not isinstance(data, ImageData):
        raise DataError(
            f"stratified_subset takes an ImageData, got a {type(data).__name__}; "
            "build one with from_arrays(x, y)"
        )
    f = _check_fraction(fraction, allow_one=True, what="subset")
    if f == 1.0:
        return data
    return data.subset(_per_class_pick(data.labels, f, seed, keep_one=False))
