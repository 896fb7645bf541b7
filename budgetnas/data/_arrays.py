"""Turn user arrays (any layout the user is likely to have) into a checked :class:`ImageData`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from budgetnas.data._tensor import aspect_changes
from budgetnas.data._types import ImageData
from budgetnas.errors import DataError, user_stacklevel


def from_arrays(
    x: Any,
    y: Any,
    *,
    classes: Sequence[str] | None = None,
    name: str = "arrays",
    channels_last: bool | None = None,
) -> ImageData:
    """Check and convert images and labels into an :class:`ImageData` (channels first).

    ``x`` is an array (or a list of equally sized arrays) shaped ``(N, H, W)`` for one channel,
    or ``(N, H, W, C)`` with any number of channels (1, 3, 16 spectral bands...). A 4-D array is
    read as channels-last ``(N, H, W, C)`` unless ``channels_last=False``, which reads
    ``(N, C, H, W)``. uint8 stays uint8; other integers in 0..255 become uint8, any other integer
    or float becomes float32 (floats are expected in [0, 1]; other ranges only warn, since training
    normalises with the data's own mean and std).

    ``y`` holds one label per image: integers of any values (``[3, 7]`` gives classes
    ``('3', '7')``), strings, or floats holding whole numbers. Without ``classes`` the classes are
    the distinct labels, sorted; with ``classes`` the labels must be indices into it or its names.

    Example:
        >>> import numpy as np
        >>> d = from_arrays(np.zeros((6, 8, 8, 3), np.uint8), ["cat", "dog"] * 3)
        >>> d.shape, d.classes
        ((3, 8, 8), ('cat', 'dog'))
    """
    images = _as_images(x, channels_last)
    labels, class_names = encode_labels(y, n=len(images), classes=classes)
    return ImageData(images, labels, class_names, name)


def _to_numpy(value: Any) -> Any:
    """numpy view of array-likes; torch tensors are detached and moved to the CPU first."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor; torch is not imported
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":  # numpy has no bfloat16
            value = value.float()
    if hasattr(value, "__array__") or hasattr(value, "__array_interface__"):  # (PIL images have the latter)
        return np.asarray(value)
    return value


def _size_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _as_images(x: Any, channels_last: bool | None) -> np.ndarray:
    if isinstance(x, (list, tuple)) and x and all(_is_pil(im) for im in x):
        arr, channels_last = _stack_pil(x), False
    elif isinstance(x, (list, tuple)):
        arr = _stack_images(x)
    else:
        arr = _to_numpy(x)
        if not isinstance(arr, np.ndarray):
            raise DataError(
                f"images must be a numpy array shaped (N, H, W) or (N, H, W, C), or a list of "
                f"images, got a {type(x).__name__}; load files with load_image_folder() or "
                "load_dataset() instead" + (_FILE_HINT if isinstance(x, (str, os.PathLike)) else "")
            )
    _check_image_dtype(arr)
    if arr.ndim == 3:
        arr = arr[:, None, :, :]
    elif arr.ndim == 4:
        if channels_last is None and _looks_channels_first(arr.shape) and arr.shape[1] <= 4:
            # Read channels-last, images 1 to 4 pixels high with more channels than rows: no image
            # anyone trains on, and a search trained a meaningless model on them after a warning
            # (a (N, 1, 8, 8) digit stack as 8-channel 1x8 images: a review, 2026-12-07).
            raise DataError(
                f"images of shape {arr.shape} look channels-first (N, C, H, W): read as (N, H, W, C) they "
                f"would be {arr.shape[1]}x{arr.shape[2]} pixels of {arr.shape[3]} channels; pass "
                "channels_last=False (--channels-first on the command line), or transpose them to "
                "(N, H, W, C) (x.transpose(0, 2, 3, 1))")
        if channels_last is None and _looks_channels_first(arr.shape):
            warnings.warn(
                f"images of shape {arr.shape} look channels-first (N, C, H, W) but are read as "
                f"(N, H, W, C), giving {arr.shape[3]} channels of {arr.shape[1]}x{arr.shape[2]} "
                "pixels; pass channels_last=False (--channels-first on the command line) if they "
                "are channels-first",
                stacklevel=user_stacklevel(),
            )
        if channels_last is None or channels_last:
            arr = arr.transpose(0, 3, 1, 2)
    else:
        hint = ""
        if arr.ndim == 2:
            hint = (
                " If each row is a flattened image, reshape it to (N, H, W) first;"
                " for one image add a leading axis (x[None])."
            )
        raise DataError(
            f"images must be 3-D (N, H, W) or 4-D (N, H, W, C), got {arr.ndim}-D shape "
            f"{arr.shape}.{hint or ' Reshape them to one of those layouts.'}"
        )
    n, c, h, w = arr.shape
    if n == 0:
        raise DataError(
            f"there are no images (shape {arr.shape}); pass at least one image per class"
        )
    if min(c, h, w) == 0:
        raise DataError(
            f"images have an empty dimension (channels, height, width = {c}, {h}, {w}); "
            "check the array's shape and channels_last"
        )
    return _convert(arr)


def _is_pil(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "getexif")  # (PIL not imported)


def _stack_pil(items: Sequence[Any], want: str | None = None) -> np.ndarray:
    """Pillow images as (N, C, H, W), read as image files are (fit and predict alike): upright by
    their EXIF orientation, 16-bit ones as value / 65535 floats, palettes as colours, transparent
    parts onto black; one channel if every image is gray, else three (``want`` "L" or "RGB":
    that many). np.asarray had read raw 16-bit values, palette indices and alpha channels, which
    predict, reading files' way, did not: a model fit on 16-bit images scored chance on them.

    Images of several sizes are resized, with a warning, as an image folder's are: to the most
    common size or the median one (a model's ``preprocess`` takes them size by size instead). (They were refused, while the same images in a folder were read: a batch of real
    photos could not be predicted in one call, a user review found, 2026-12-06.)"""
    from collections import Counter

    from PIL import ImageOps

    from budgetnas.data._folder import _common_size, pil_pixels, stack_pixels

    arrays = [pil_pixels(ImageOps.exif_transpose(im), want) for im in items]
    counts = Counter(a.shape[:2] for a in arrays)
    if len(counts) == 1:
        return stack_pixels(arrays, want, next(iter(counts)))
    hw, which = _common_size(counts)
    aspect = any(aspect_changes(size, hw) for size in counts)
    warnings.warn(f"the {len(arrays)} images have {len(counts)} different sizes; resized "
                  f"{len(arrays) - counts.get(hw, 0)} of them to {hw[0]}x{hw[1]} ({which})"
                  + (", which changes the aspect ratio of some; resize them yourself to choose how" if aspect else ""),
                  stacklevel=user_stacklevel())
    return stack_pixels(arrays, want, hw)


def _stack_images(items: Sequence[Any]) -> np.ndarray:
    if len(items) == 0:
        raise DataError("the list of images is empty; pass at least one image per class")
    arrays = []
    first_shape: tuple[int, ...] | None = None
    for i, item in enumerate(items):
        a = _to_numpy(item)
        if isinstance(a, (list, tuple)):  # nested lists of pixel values (e.g. from .tolist() or JSON)
            try:
                a = np.asarray(a)
            except ValueError:  # (numpy refuses ragged lists)
                a = None
            if a is None or a.dtype == object:
                raise DataError(f"image {i} in the list is a ragged nested list (rows of different "
                                "lengths); give each image as an array shaped (H, W) or (H, W, C)")
        if not isinstance(a, np.ndarray):
            raise DataError(
                f"image {i} in the list is a {type(item).__name__}, not an array; pass arrays "
                "shaped (H, W) or (H, W, C)" + (_FILE_HINT if isinstance(item, (str, os.PathLike)) else "")
            )
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]  # (H, W, 1) is (H, W): it was refused beside one as "8x8 and 8x8x1", mixed sizes
        if first_shape is None:
            first_shape = a.shape
        elif a.shape[:2] == first_shape[:2] and _channels(a.shape) != _channels(first_shape):
            # (said "mixed sizes ... resize them": they are one size, some gray and some colour, as
            # grey JPEGs among colour ones are; a review, 2026-12-07)
            raise DataError(
                f"images of one size but different channels: image 0 has {_channels(first_shape)} and image {i} "
                f"{_channels(a.shape)} (gray images among colour ones?); give every image the same channels, e.g. "
                "np.repeat(gray[..., None], 3, axis=2), or pass the Pillow images themselves (read alike, "
                "gray ones as colour beside colour ones)"
            )
        elif a.shape != first_shape:
            raise DataError(
                f"images of mixed sizes: found {_size_text(first_shape)} and "
                f"{_size_text(a.shape)} (images 0 and {i}); resize them to one size first or "
                "use load_image_folder(size=...)"
            )
        if arrays and (a.dtype.kind == "f") != (arrays[0].dtype.kind == "f"):
            # (stacked, uint8 pixels 0..255 sat beside floats in [0, 1]: two scales in one set)
            raise DataError(
                f"images of mixed types: image 0 is {arrays[0].dtype} and image {i} {a.dtype}; integer "
                "pixels are read as value / 255 and floats as they are, so give every image as one type "
                "(e.g. (f * 255).round().astype(np.uint8) for floats in [0, 1])"
            )
        arrays.append(a)
    try:
        return np.stack(arrays)
    except (TypeError, ValueError) as exc:  # pragma: no cover - numpy refuses odd element types
        raise DataError(f"could not stack the list of images ({exc}); pass numeric arrays") from exc


def _check_image_dtype(arr: np.ndarray) -> None:
    kind = arr.dtype.kind
    if kind in "uif":
        return
    if kind == "O":
        fix = "images of different sizes or non-numeric objects; pass a numeric array of one size"
    elif kind == "b":
        fix = "boolean images; convert them, e.g. x.astype(np.uint8) * 255"
    elif kind == "c":
        fix = "complex numbers; pass np.abs(x) or x.real"
    elif kind in "US":
        fix = "strings, not pixel values; load image files with load_image_folder()"
    else:
        fix = "values that are not pixel values; pass uint8 (0..255) or float (0..1) arrays"
    raise DataError(f"images have dtype {arr.dtype}, which holds {fix}")


def _looks_channels_first(shape: tuple[int, ...]) -> bool:
    """(N, C, H, W) with C below both H and W (and those over 4): read as channels-last these
    would be images with fewer rows than they have channels and columns, (N, 3, 32, 32) 3 pixels
    high, a 16-band satellite stack (N, 16, 64, 48) 16 rows of 48 channels. (Only square ones
    used to warn, and 1, 3 or 4 channels.)"""
    _, a, b, c = shape
    return a < min(b, c) and min(b, c) > 4


def _convert(arr: np.ndarray) -> np.ndarray:
    """uint8 for 0..255 integers; integers beyond that range as float32 ``value / 255``, the
    units uint8 pixels are read in (so a batch's own range never changes how a pixel value is
    read: a dark 12-bit test batch means what the bright training batch meant); floats as float32
    after a finiteness check."""
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind in "iu":
        lo, hi = arr.min(), arr.max()
        if lo >= 0 and hi <= 255:
            return np.ascontiguousarray(arr, dtype=np.uint8)
        warnings.warn(
            f"integer images range from {lo} to {hi}, beyond 0..255; they are read as pixel "
            "values like uint8 ones (stored as float32 value / 255) and normalised with the "
            "training set's mean and std",
            stacklevel=user_stacklevel(),
        )
        return np.ascontiguousarray(arr, dtype=np.float32) / np.float32(255.0)
    with np.errstate(over="ignore"):
        as32 = arr if arr.dtype == np.float32 else arr.astype(np.float32)
    finite = np.isfinite(as32)
    if not finite.all():
        bad = finite.size - int(np.count_nonzero(finite))
        first = int(np.argmax(~finite.reshape(len(arr), -1).all(axis=1)))
        raise DataError(
            f"images hold {bad} NaN or infinite value(s) (or values too large for float32), "
            f"first in image {first}; replace them (np.nan_to_num) or drop those images"
        )
    lo, hi = float(as32.min()), float(as32.max())
    if lo < 0.0 or hi > 1.0:
        hint = " (if they are 0..255 pixels, x.astype(np.uint8) stores them compactly)"
        warnings.warn(
            f"float images range from {lo:g} to {hi:g}, not [0, 1]{hint if lo >= 0 and 16 < hi <= 255 else ''}; "
            "floats are read as they are (integer pixels as value / 255) and normalised with the training "
            "set's mean and std, so give later images (test, predict) in this same form",
            stacklevel=user_stacklevel(),
        )
    return np.ascontiguousarray(as32)


# (predict("photo.jpg") was told to use load_image_folder, which wants class folders and labels)
_FILE_HINT = "; for image files, pass the Pillow images: [PIL.Image.open(p) for p in paths]"


def _channels(shape: tuple[int, ...]) -> int:
    """The channels of one image shaped (H, W) or (H, W, C)."""
    return 1 if len(shape) == 2 else int(shape[-1])


def label_column(y: np.ndarray) -> np.ndarray:
    """Labels shaped ``(N, 1)`` (keras.datasets gives CIFAR's so) as ``(N,)``; others as they are."""
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def refuse_mixed_labels(labels: Any) -> Any:
    """``labels`` as they are, unless a list mixes strings with other labels (np.asarray would
    make ["a", 1] two strings): a DataError then."""
    if isinstance(labels, (list, tuple)) and len({isinstance(v, (str, bytes)) for v in labels}) > 1:
        kinds = sorted({type(v).__name__ for v in labels})
        raise DataError(f"labels mix types ({', '.join(kinds)}); use all strings or all integers")
    return labels


def encode_labels(
    y: Any, *, n: int | None = None, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map labels to int64 class indices; returns ``(indices, class names)``.

    Internal helper shared by every loader (also used to encode train and test labels together).
    """
    arr = refuse_mixed_labels(_to_numpy(y))
    if isinstance(arr, (list, tuple)):
        arr = np.asarray(arr) if len(arr) else np.zeros(0, np.int64)
    if not isinstance(arr, np.ndarray) or arr.ndim == 0:
        raise DataError(
            f"labels must be a 1-D array or list (one label per image), got a "
            f"{type(y).__name__}; pass e.g. np.array([0, 1, 1, 0])"
        )
    arr = label_column(arr)
    if arr.ndim != 1:
        if arr.ndim == 2:
            hint = "if they are one-hot rows, pass y.argmax(axis=1)"
        else:
            hint = "pass one label per image"
        raise DataError(f"labels must be 1-D (one per image), got shape {arr.shape}; {hint}")
    if n is not None and len(arr) != n:
        raise DataError(
            f"there are {n} images but {len(arr)} labels; give exactly one label per image"
        )
    values = _label_values(arr)
    if classes is not None:
        return _encode_with_classes(values, classes), _check_classes(classes)
    if values.dtype.kind in "iu":
        uniq = np.unique(values)
        names = tuple(str(int(v)) for v in uniq)
        codes = np.searchsorted(uniq, values)
    else:
        uniq, codes = np.unique(values, return_inverse=True)
        names = tuple(str(v) for v in uniq)
    if len(names) < 2:
        found = f"a single class {names[0]!r}" if names else "no labels"
        raise DataError(
            f"found {found}; a classifier needs at least two classes. Add images of another "
            "class, or check that the labels were read correctly"
        )
    return codes.astype(np.int64).reshape(-1), names


def _label_values(arr: np.ndarray) -> np.ndarray:
    """Labels as an integer array or a str array."""
    kind = arr.dtype.kind
    if kind in "iu":
        return arr
    if kind == "b":
        return arr.astype(np.int64)
    if kind == "U":
        return arr
    if kind == "S":  # (bytes, as h5py and many exported files store names: UTF-8, else Latin-1; astype(str)
        # decoded them as ASCII and "café" ended the load in a UnicodeDecodeError: a review, 2026-12-07)
        try:
            return np.char.decode(arr, "utf-8")
        except UnicodeDecodeError:
            return np.char.decode(arr, "latin-1")
    if kind == "f":
        finite = np.isfinite(arr)
        whole = finite & (arr == np.round(np.where(finite, arr, 0)))
        if not whole.all():
            i = int(np.argmin(whole))
            raise DataError(
                f"labels must be whole numbers or strings; label {i} is {arr[i]!r}. If these "
                "are class scores or probabilities, pass their argmax instead"
            )
        big = np.abs(arr) > 2.0 ** 53  # (floats that large no longer hold every whole number)
        if big.any():
            i = int(np.argmax(big))
            raise DataError(f"label {i} is {arr[i]!r}, too large to be a class number held as a float; give "
                            "labels as integers or strings")
        return arr.astype(np.int64)
    if kind == "O":
        items = arr.tolist()
        if all(isinstance(v, str) for v in items):
            return np.asarray(items, dtype=str)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            return np.asarray(items, dtype=np.int64)
        kinds = sorted({type(v).__name__ for v in items})
        raise DataError(
            f"labels mix types ({', '.join(kinds)}); use all strings or all integers"
        )
    raise DataError(
        f"labels have dtype {arr.dtype}; use integers or strings (one label per image)"
    )


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str):
        raise DataError(
            f"classes must be a list of names, got the string {classes!r}; pass e.g. ['cat', 'dog']"
        )
    names = tuple(str(c) for c in classes)
    if len(names) < 2:
        raise DataError(
            f"classes={names!r} names fewer than two classes; a classifier needs at least two"
        )
    if len(set(names)) != len(names):
        dup = next(c for c in names if names.count(c) > 1)
        raise DataError(f"class {dup!r} appears twice in classes; name each class once")
    return names


def _encode_with_classes(values: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    names = _check_classes(classes)
    k = len(names)
    if values.dtype.kind in "iu":
        bad = (values < 0) | (values >= k)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"with {k} classes given, integer labels must be class indices in [0, {k}); "
                f"label {i} is {int(values[i])}. Pass indices, or the class names as labels"
            )
        return values.astype(np.int64)
    lookup = {c: i for i, c in enumerate(names)}
    uniq, inverse = np.unique(values, return_inverse=True)
    missing = [u for u in uniq.tolist() if u not in lookup]
    if missing:
        raise DataError(
            f"label(s) {missing[:5]} are not among the given classes {names}; "
            "add them to classes or fix the labels"
        )
    table = np.array([lookup[u] for u in uniq.tolist()], np.int64)
    return table[inverse.reshape(-1)]


def check_same_scale(x_train: Any, x_test: Any, train_name: str = "the training images",
                     test_name: str = "the test images") -> None:
    """Refuse training and test images whose dtypes are read on different scales: integer pixels
    are read as value / 255, floats as they are, so uint8 training images beside float test
    images (or the reverse) would be scored 255x off, silently."""
    a, b = _to_numpy(x_train), _to_numpy(x_test)
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return  # (lists of images: each is checked as it is read)
    kinds = {"i": "integer", "u": "integer", "f": "float"}
    ka, kb = kinds.get(a.dtype.kind), kinds.get(b.dtype.kind)
    if ka and kb and ka != kb:
        raise DataError(
            f"{train_name} are {a.dtype} but {test_name} are {b.dtype}: integer pixels are read as "
            "value / 255 and floats as they are, so the two would be scaled differently; give both the "
            "same kind (e.g. x_test.astype(np.uint8) for 0..255 floats, or both as floats in [0, 1])")


def as_images(x: Any, *, channels_last: bool | None = None) -> np.ndarray:
    """Check images alone (no labels), as for prediction: the same layouts and checks as
    :func:`from_arrays`, returned as a channels-first ``(N, C, H, W)`` uint8 or float32 array."""
    return _as_images(x, channels_last)
