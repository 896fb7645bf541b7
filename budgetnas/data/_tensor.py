"""Normalisation statistics, the resolution policy, and conversion to a float tensor."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from budgetnas.data._types import ImageData
from budgetnas.errors import DataError, user_stacklevel

if TYPE_CHECKING:
    import torch

_STD_FLOOR = 1e-6
_FLAT = 1e-3  # a channel whose std is below this fraction of the widest channel's is taken as constant
_CHUNK_ELEMENTS = 1 << 23  # ~8M values (64 MiB in float64) per chunk


def _chunk_len(images: np.ndarray) -> int:
    per_image = max(1, int(np.prod(images.shape[1:])))
    return max(1, _CHUNK_ELEMENTS // per_image)


def channel_stats(images: np.ndarray | ImageData) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float64, population std) of ``(N, C, H, W)`` images.

    A channel that is constant in these images (an empty colour channel, an alpha channel always
    opaque, a band with no data: its std below 1/1000 of the widest channel's) gets the widest
    channel's std instead of its own (1 where every channel is constant), with a warning. Divided by
    its own near-zero spread, a value there at prediction that training never saw (one pixel off by
    2/255) was multiplied by about a million and flipped the prediction (found in review, 2026-12-07);
    nothing can be learnt from such a channel, and now it cannot swamp the others either.

    uint8 images are measured in [0, 1] units (divided by 255), float images as they are, so the
    result plugs straight into :func:`to_tensor`. Works in chunks (exact histograms for uint8, a
    pairwise merge of chunk moments for floats), so memory stays small and the result accurate.

    Example:
        >>> import numpy as np
        >>> mean, std = channel_stats(np.full((2, 3, 4, 4), 255, np.uint8))
        >>> mean.tolist(), std.tolist()  # (and a warning: every channel is constant)
        ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    """
    if isinstance(images, ImageData):
        images = images.images
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[0] == 0 or arr.dtype.kind not in "uif":
        raise DataError(
            f"channel_stats takes numeric images shaped (N, C, H, W) with N > 0, got shape "
            f"{arr.shape} and dtype {arr.dtype}; pass ImageData.images"
        )
    if arr.dtype == np.uint8:
        mean, m2, count = _uint8_moments(arr)
    else:
        mean, m2, count = _float_moments(arr)
    std = np.sqrt(m2 / count)
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise DataError(
            "the images' mean or std is not finite (NaN/inf pixels or overflow); "
            "build the data with from_arrays(), which rejects NaN and inf"
        )
    return mean, _usable_std(mean, std, arr.dtype == np.uint8)


def _usable_std(mean: np.ndarray, std: np.ndarray, uint8: bool) -> np.ndarray:
    """``std`` with each constant channel's replaced by the widest channel's (see channel_stats)."""
    widest = float(std.max())
    flat = std < max(_STD_FLOOR, _FLAT * widest)
    if not flat.any():
        return std
    scale = widest if widest >= _STD_FLOOR else 1.0
    many = flat.sum() > 1
    ks = np.flatnonzero(flat)
    its, it = ("their", "them") if many else ("its", "it")
    warnings.warn(
        f"channel{'s' if many else ''} {', '.join(str(k) for k in ks)} of {len(std)} (counting from 0) "
        f"{'are' if many else 'is'} {', '.join(f'{mean[k]:.4g}' for k in ks)}{' (in 0-1 units)' if uint8 else ''} "
        f"in every training image: nothing can be learnt from {it}. {'They are' if many else 'It is'} normalised "
        f"with a std of {scale:.4g} ({'the widest channel' + chr(39) + 's' if widest >= _STD_FLOOR else 'every channel is constant'}), "
        f"not {its} zero spread, so that other values there at prediction cannot swamp the rest. If "
        f"{'they' if many else 'it'} should vary, check how the images were made", stacklevel=user_stacklevel())
    out = std.copy()
    out[flat] = scale
    return out


def _uint8_moments(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact per-channel mean and sum of squared deviations from 256-bin histograms."""
    c = arr.shape[1]
    hist = np.zeros((c, 256), np.int64)
    step = _chunk_len(arr)
    for start in range(0, arr.shape[0], step):
        chunk = arr[start : start + step]
        for ch in range(c):
            hist[ch] += np.bincount(chunk[:, ch].reshape(-1), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    count = int(hist[0].sum())
    mean = hist @ values / count
    m2 = (hist * (values[None, :] - mean[:, None]) ** 2).sum(axis=1)
    return mean, m2, count


def _float_moments(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel mean and sum of squared deviations, merged chunk by chunk (Chan et al. 1979)."""
    c = arr.shape[1]
    count = 0
    mean = np.zeros(c, np.float64)
    m2 = np.zeros(c, np.float64)
    step = _chunk_len(arr)
    for start in range(0, arr.shape[0], step):
        chunk = arr[start : start + step].astype(np.float64).transpose(1, 0, 2, 3).reshape(c, -1)
        n_b = chunk.shape[1]
        mean_b = chunk.mean(axis=1)
        m2_b = ((chunk - mean_b[:, None]) ** 2).sum(axis=1)
        delta = mean_b - mean
        total = count + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (count * n_b / total)
        count = total
    return mean, m2, count


def aspect_changes(size: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether images of ``size`` (height, width) have another aspect ratio (by over 2 %) than
    ``other``: resized to it, they are stretched (``other`` (1, 1): to squares)."""
    return abs(size[0] * other[1] / (size[1] * other[0]) - 1) > 0.02


def resolve_resolution(shape_hw: tuple[int, int], requested: int | None, *, cap: int = 32) -> int:
    """The square side length images are trained at: ``requested``, else ``min(max(H, W), cap)``.

    NAS-Bench-201's stem never downsamples, so compute grows with the square of the input side;
    inputs are therefore resized to a square ``R x R``. Without a request the native size is used,
    capped at 32 by default (the size NB201 was designed for, CIFAR's). Search and final training
    call this same function, so both see the same resolution. Never below 4 (the network halves
    it twice).

    Example:
        >>> resolve_resolution((28, 28), None), resolve_resolution((224, 160), None)
        (28, 32)
        >>> resolve_resolution((224, 224), 64)
        64
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, numbers.Integral):
            if not (isinstance(requested, float) and requested.is_integer()):
                raise DataError(
                    f"resolution must be a whole number of pixels, got {requested!r}; e.g. 32"
                )
        r = int(requested)
        if r < 4:
            raise DataError(
                f"resolution {r} is too small: the network halves it twice, so it must be at "
                "least 4 (e.g. 16 or 32)"
            )
        return r
    if isinstance(cap, bool) or not isinstance(cap, numbers.Integral) or cap < 4:
        raise DataError(f"resolution cap must be an integer >= 4, got {cap!r}; e.g. 32")
    try:
        h, w = (int(s) for s in shape_hw)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"shape_hw must be (height, width), got {shape_hw!r}; pass data.shape[1:]"
        ) from exc
    if h < 1 or w < 1:
        raise DataError(f"image size {h}x{w} is empty; check the data")
    return max(4, min(max(h, w), int(cap)))


def _as_stat(value: Any, c: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, c)
    if arr.size != c:
        raise DataError(
            f"{what} has {arr.size} values but the images have {c} channel(s); "
            "pass one value per channel (from channel_stats(train.images))"
        )
    if not np.isfinite(arr).all():
        raise DataError(f"{what} holds NaN or inf; compute it with channel_stats(train.images)")
    return arr


def pixel_range(images: np.ndarray) -> tuple[float, float]:
    """The lowest and highest pixel of ``images`` as :func:`to_tensor` reads them (uint8 as
    value / 255, floats as stored); (0, 0) for no pixels.

    Example:
        >>> pixel_range(np.array([[0, 51], [255, 102]], np.uint8))
        (0.0, 1.0)
    """
    if not images.size:
        return 0.0, 0.0
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return float(images.min()) / scale, float(images.max()) / scale


def to_tensor(
    data: ImageData,
    *,
    mean: Sequence[float] | np.ndarray,
    std: Sequence[float] | np.ndarray,
    resolution: int | None = None,
) -> torch.Tensor:
    """Float32 ``(N, C, R, R)`` CPU tensor: ``((x / 255 if uint8 else x) - mean) / std``.

    With ``resolution`` different from the images' size, images are resized (non-square ones to
    square) with antialiased bilinear interpolation, in chunks to bound memory. Use the *training*
    set's :func:`channel_stats` for both train and test.

    Example:
        >>> import numpy as np
        >>> from budgetnas.data import from_arrays
        >>> d = from_arrays(np.zeros((4, 28, 28), np.uint8), [0, 1, 0, 1])
        >>> tuple(to_tensor(d, mean=[0.5], std=[0.25], resolution=16).shape)
        (4, 1, 16, 16)
    """
    import torch
    import torch.nn.functional as F

    if not isinstance(data, ImageData):
        raise DataError(
            f"to_tensor takes an ImageData, got a {type(data).__name__}; "
            "build one with from_arrays(x, y)"
        )
    c, h, w = data.shape
    mean_arr = _as_stat(mean, c, "mean")
    std_arr = _as_stat(std, c, "std")
    if (std_arr <= 0).any():
        raise DataError(f"std must be > 0 for every channel, got {std_arr.tolist()}")
    if resolution is None:
        out_h, out_w = h, w
    else:
        r = resolve_resolution((h, w), resolution)
        out_h, out_w = r, r
    n = len(data)
    out = torch.empty((n, c, out_h, out_w), dtype=torch.float32)
    mean_t = torch.from_numpy(mean_arr.astype(np.float32)).view(1, c, 1, 1)
    std_t = torch.from_numpy(std_arr.astype(np.float32)).view(1, c, 1, 1)
    images = data.images
    is_uint8 = images.dtype == np.uint8
    step = _chunk_len(images) if n else 1
    for start in range(0, n, step):
        chunk = torch.from_numpy(images[start : start + step].astype(np.float32))  # writable copy
        if is_uint8:
            chunk.div_(255.0)
        if (out_h, out_w) != (h, w):
            chunk = F.interpolate(
                chunk, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False
            )
        out[start : start + step] = chunk.sub_(mean_t).div_(std_t)
    return out
