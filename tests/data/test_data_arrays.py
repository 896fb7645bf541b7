"""from_arrays, ImageData and DataSplits: conversion, label mapping and every validation error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from budgetnas.data import DataSplits, ImageData, from_arrays, to_tensor
from budgetnas.errors import DataError


def _u8(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# ----------------------------------------------------------------------------- channels


def test_grayscale_nhw_gets_one_channel_and_stays_uint8():
    x = _u8(6, 5, 7)
    d = from_arrays(x, [0, 1, 2] * 2)
    assert d.images.shape == (6, 1, 5, 7)
    assert d.images.dtype == np.uint8
    np.testing.assert_array_equal(d.images[:, 0], x)
    assert d.shape == (1, 5, 7)
    assert len(d) == 6


@pytest.mark.parametrize("channels", [1, 3, 16])
def test_channels_last_is_moved_first(channels):
    x = _u8(4, 6, 6, channels)
    d = from_arrays(x, [0, 1, 0, 1])
    assert d.images.shape == (4, channels, 6, 6)
    assert d.images.flags.c_contiguous
    for c in range(channels):
        np.testing.assert_array_equal(d.images[:, c], x[..., c])


def test_channels_first_when_told():
    x = _u8(4, 16, 6, 5)
    d = from_arrays(x, [0, 1, 0, 1], channels_last=False)
    assert d.shape == (16, 6, 5)
    np.testing.assert_array_equal(d.images, x)


def test_channels_first_looking_input_is_refused_or_warns():
    """Read channels-last, (N, 3, 32, 32) is 3-pixel-high images of 32 channels: refused (a search
    trained a meaningless model on them after a warning: a review, 2026-12-07); told, it is read."""
    with pytest.raises(DataError, match=r"look channels-first .* would be 3x32 pixels of 32 channels; pass "
                                        r"channels_last=False \(--channels-first on the command line\)"):
        from_arrays(_u8(4, 3, 32, 32), [0, 1, 0, 1])
    with pytest.raises(DataError, match="would be 1x8 pixels of 8 channels"):
        from_arrays(_u8(4, 1, 8, 8), [0, 1, 0, 1])
    assert from_arrays(_u8(4, 3, 32, 32), [0, 1, 0, 1], channels_last=True).shape == (32, 3, 32)  # (as told)
    with pytest.warns(UserWarning, match="look channels-first.*channels_last=False"):  # 16 rows: plausible
        d = from_arrays(_u8(4, 16, 32, 32), [0, 1, 0, 1])
    assert d.shape == (32, 16, 32)  # read as documented: (N, H, W, C)


def test_list_of_arrays_and_torch_tensors_are_accepted():
    imgs = [_u8(5, 5, 3, seed=i) for i in range(4)]
    d = from_arrays(imgs, np.array([1, 0, 1, 0]))
    np.testing.assert_array_equal(d.images[2], imgs[2].transpose(2, 0, 1))
    t = from_arrays(torch.zeros(4, 5, 5), torch.tensor([0, 1, 0, 1]))
    assert t.shape == (1, 5, 5)
    assert t.labels.tolist() == [0, 1, 0, 1]


def test_result_is_read_only_but_callers_array_is_untouched():
    x = _u8(4, 5, 5)
    d = from_arrays(x, [0, 1, 0, 1])
    assert not d.images.flags.writeable
    assert not d.labels.flags.writeable
    assert x.flags.writeable
    with pytest.raises(ValueError):
        d.images[0, 0, 0, 0] = 1


# ----------------------------------------------------------------------------- dtypes


def test_small_integers_become_uint8_large_ones_float32():
    x16 = np.arange(4 * 4 * 4, dtype=np.int16).reshape(4, 4, 4)
    assert from_arrays(x16, [0, 1, 0, 1]).images.dtype == np.uint8
    big = x16.astype(np.int32) * 100
    with pytest.warns(UserWarning, match="beyond 0..255"):
        d = from_arrays(big, [0, 1, 0, 1])
    assert d.images.dtype == np.float32
    assert d.images.max() == pytest.approx(big.max() / 255)


def test_integer_pixels_mean_the_same_whatever_the_batch_range():
    """A dark 12-bit batch (all values <= 255) and a bright one read the same value the same way,
    so train, test and predict batches agree (found by review, 2026-12-02)."""
    bright = np.array([[[0, 200], [4000, 4095]]] * 2, dtype=np.uint16)
    dark = np.array([[[0, 200], [100, 50]]] * 2, dtype=np.uint16)
    with pytest.warns(UserWarning, match="beyond 0..255"):
        b = to_tensor(from_arrays(bright, [0, 1]), mean=[0.0], std=[1.0])
    d = to_tensor(from_arrays(dark, [0, 1]), mean=[0.0], std=[1.0])
    assert b[0, 0, 0, 1].item() == pytest.approx(d[0, 0, 0, 1].item()) == pytest.approx(200 / 255)


def test_float64_becomes_float32_without_warning_in_unit_range():
    x = np.random.default_rng(0).random((4, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = from_arrays(x, [0, 1, 0, 1])
    assert d.images.dtype == np.float32
    np.testing.assert_allclose(d.images[:, 0], x, rtol=1e-6)


def test_float_images_outside_unit_range_warn_but_load():
    x = np.random.default_rng(0).normal(size=(4, 3, 3)).astype(np.float32)
    expected = r"float images range from .* not \[0, 1\].*normalised with the training"
    with pytest.warns(UserWarning, match=expected):
        d = from_arrays(x, [0, 1, 0, 1])
    assert d.images.dtype == np.float32


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((4, 3, 3), bool), "dtype bool.*boolean images.*astype"),
        (np.zeros((4, 3, 3), complex), "complex.*np.abs"),
        (np.full((4, 3, 3), "a"), "strings, not pixel values.*load_image_folder"),
        (np.empty((4, 3, 3), object), "dtype object.*numeric array"),
    ],
)
def test_unusable_dtypes_are_refused(x, match):
    with pytest.raises(DataError, match=match):
        from_arrays(x, [0, 1, 0, 1])


def test_nan_and_inf_are_counted_with_first_image():
    x = np.zeros((5, 3, 3), np.float32)
    x[2, 0, 0] = np.nan
    x[2, 1, 1] = np.inf
    x[4, 0, 0] = np.nan
    expected = r"3 NaN or infinite value\(s\).*first in image 2.*nan_to_num"
    with pytest.raises(DataError, match=expected):
        from_arrays(x, [0, 1, 0, 1, 0])


# ----------------------------------------------------------------------------- shapes


def test_mixed_sizes_in_a_list_are_refused_with_advice():
    imgs = [np.zeros((28, 28), np.uint8)] * 5 + [np.zeros((32, 32), np.uint8)]
    with pytest.raises(
        DataError,
        match=r"images of mixed sizes: found 28x28 and 32x32 \(images 0 and 5\).*"
        r"load_image_folder\(size=\.\.\.\)",
    ):
        from_arrays(imgs, [0, 1] * 3)


@pytest.mark.parametrize("x", ["images.png", {"a": 1}, 3, None])
def test_non_arrays_are_refused(x):
    with pytest.raises(DataError, match="numpy array shaped .*got a"):
        from_arrays(x, [0, 1])


def test_list_holding_a_non_array_is_refused():
    with pytest.raises(DataError, match="image 1 in the list is a str"):
        from_arrays([np.zeros((2, 2)), "x"], [0, 1])


def test_flat_2d_input_gets_a_reshape_hint():
    with pytest.raises(DataError, match=r"got 2-D shape \(4, 64\).*flattened image, reshape"):
        from_arrays(np.zeros((4, 64), np.uint8), [0, 1, 0, 1])


def test_5d_input_is_refused():
    with pytest.raises(DataError, match="3-D \\(N, H, W\\) or 4-D.*got 5-D"):
        from_arrays(np.zeros((2, 2, 2, 2, 2), np.uint8), [0, 1])


def test_zero_images_are_refused():
    with pytest.raises(DataError, match="no images.*at least one image"):
        from_arrays(np.zeros((0, 8, 8), np.uint8), [])
    with pytest.raises(DataError, match="list of images is empty"):
        from_arrays([], [])


def test_empty_image_dimension_is_refused():
    with pytest.raises(DataError, match="empty dimension"):
        from_arrays(np.zeros((2, 0, 8), np.uint8), [0, 1])


# ----------------------------------------------------------------------------- labels


def test_string_labels_map_to_sorted_classes():
    d = from_arrays(_u8(4, 2, 2), np.array(["dog", "cat", "dog", "bird"]))
    assert d.classes == ("bird", "cat", "dog")
    assert d.labels.tolist() == [2, 1, 2, 0]
    assert d.labels.dtype == np.int64
    assert d.num_classes == 3


def test_sparse_int_labels_map_in_numeric_order():
    d = from_arrays(_u8(4, 2, 2), [7, 3, 7, 3])
    assert d.classes == ("3", "7")
    assert d.labels.tolist() == [1, 0, 1, 0]
    d = from_arrays(_u8(3, 2, 2), [10, 2, 10])
    assert d.classes == ("2", "10")  # numeric, not lexicographic
    assert d.labels.tolist() == [1, 0, 1]


def test_integral_float_labels_are_accepted():
    d = from_arrays(_u8(3, 2, 2), np.array([1.0, 0.0, 4.0]))
    assert d.classes == ("0", "1", "4")
    assert d.labels.tolist() == [1, 0, 2]


@pytest.mark.parametrize("bad", [[0.5, 1.0], [np.nan, 1.0]])
def test_non_integral_float_labels_are_refused(bad):
    with pytest.raises(DataError, match="whole numbers or strings.*label 0.*argmax"):
        from_arrays(_u8(2, 2, 2), np.array(bad))


def test_bytes_and_object_string_labels():
    assert from_arrays(_u8(2, 2, 2), np.array([b"b", b"a"])).classes == ("a", "b")
    assert from_arrays(_u8(2, 2, 2), np.array(["b", "a"], object)).labels.tolist() == [1, 0]
    with pytest.raises(DataError, match="labels mix types.*all strings or all integers"):
        from_arrays(_u8(2, 2, 2), np.array(["a", 1], object))


def test_label_count_must_match():
    with pytest.raises(DataError, match="5 images but 4 labels; give exactly one label per image"):
        from_arrays(_u8(5, 2, 2), [0, 1, 0, 1])


def test_labels_must_be_1d_with_hints():
    with pytest.raises(DataError, match=r"shape \(4, 2\); if they are one-hot rows, pass y.argmax"):
        from_arrays(_u8(4, 2, 2), np.eye(2)[[0, 1, 0, 1]])
    # a column, as keras.datasets gives labels: read as 1-D (it was refused)
    assert from_arrays(_u8(4, 2, 2), np.array([[0], [1], [0], [1]])).labels.tolist() == [0, 1, 0, 1]
    with pytest.raises(DataError, match="labels must be a 1-D array or list"):
        from_arrays(_u8(4, 2, 2), 3)


def test_single_class_is_refused():
    expected = "found a single class 'cat'; a classifier needs at least two"
    with pytest.raises(DataError, match=expected):
        from_arrays(_u8(3, 2, 2), ["cat", "cat", "cat"])


def test_explicit_classes_with_indices_and_names():
    d = from_arrays(_u8(3, 2, 2), [0, 0, 0], classes=["a", "b", "c"])
    assert d.classes == ("a", "b", "c")  # a class without samples is fine when named explicitly
    d = from_arrays(_u8(3, 2, 2), ["c", "a", "c"], classes=["c", "b", "a"])
    assert d.labels.tolist() == [0, 2, 0]


def test_explicit_classes_errors():
    x = _u8(3, 2, 2)
    with pytest.raises(DataError, match=r"class indices in \[0, 2\); label 2 is 5"):
        from_arrays(x, [0, 1, 5], classes=["a", "b"])
    with pytest.raises(DataError, match=r"\['zebra'\] are not among the given classes"):
        from_arrays(x, ["a", "zebra", "b"], classes=["a", "b"])
    with pytest.raises(DataError, match="class 'a' appears twice"):
        from_arrays(x, [0, 1, 0], classes=["a", "a", "b"])
    with pytest.raises(DataError, match="fewer than two classes"):
        from_arrays(x, [0, 0, 0], classes=["a"])
    with pytest.raises(DataError, match="list of names, got the string"):
        from_arrays(x, [0, 1, 0], classes="ab")


# ----------------------------------------------------------------------------- ImageData


def _data(n: int = 10, seed: int = 0) -> ImageData:
    return from_arrays(_u8(n, 4, 4, seed=seed), np.arange(n) % 3, name="toy")


def test_subset_with_indices_mask_and_slice():
    d = _data()
    s = d.subset([1, 4])
    assert len(s) == 2 and s.classes == d.classes and s.name == "toy"
    np.testing.assert_array_equal(s.images, d.images[[1, 4]])
    assert len(d.subset(d.labels == 0)) == 4
    assert d.subset(slice(2, 5)).labels.tolist() == [2, 0, 1]
    assert len(d.subset([])) == 0


def test_subset_errors():
    d = _data()
    with pytest.raises(DataError, match="out of range.*has 10 images.*\\[0, 10\\)"):
        d.subset([0, 10])
    with pytest.raises(DataError, match=r"boolean mask .* shape \(10,\)"):
        d.subset(np.ones(3, bool))
    with pytest.raises(DataError, match="integer indices"):
        d.subset([0.5])


def test_fingerprint_is_stable_cached_and_content_sensitive():
    a, b = _data(seed=0), _data(seed=0)
    fp = a.fingerprint()
    assert len(fp) == 32 and int(fp, 16) >= 0
    assert fp == b.fingerprint() == a.fingerprint()
    assert a.__dict__["_fingerprint"] == fp
    changed = a.images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert ImageData(changed, a.labels, a.classes).fingerprint() != fp
    relabelled = a.labels.copy()
    relabelled[0] = (relabelled[0] + 1) % 3
    assert ImageData(a.images, relabelled, a.classes).fingerprint() != fp
    assert ImageData(a.images, a.labels, ("x", "y", "z")).fingerprint() != fp
    as_float = ImageData(a.images.astype(np.float32), a.labels, a.classes)
    assert as_float.fingerprint() != fp


def test_imagedata_constructor_checks_invariants():
    img = np.zeros((2, 1, 4, 4), np.uint8)
    with pytest.raises(DataError, match="4-D numpy array.*from_arrays"):
        ImageData(np.zeros((2, 4, 4), np.uint8), np.array([0, 1]), ("a", "b"))
    with pytest.raises(DataError, match="uint8 or float32, got float64"):
        ImageData(img.astype(np.float64), np.array([0, 1]), ("a", "b"))
    with pytest.raises(DataError, match=r"labels must lie in \[0, 2\)"):
        ImageData(img, np.array([0, 2]), ("a", "b"))
    with pytest.raises(DataError, match="2 images but 3 labels"):
        ImageData(img, np.array([0, 1, 1]), ("a", "b"))
    with pytest.raises(DataError, match="distinct strings"):
        ImageData(img, np.array([0, 1]), ("a", "a"))
    d = ImageData(img, np.array([0, 1], np.int32), ["a", "b"])
    assert d.classes == ("a", "b") and d.labels.dtype == np.int64
    assert "n=2" in repr(d) and "shape=(1, 4, 4)" in repr(d)


def test_datasplits_checks_classes_and_channels():
    train = _data()
    assert DataSplits(train, None).test is None
    other = from_arrays(_u8(4, 4, 4), ["p", "q", "p", "q"])
    with pytest.raises(DataError, match="different classes.*classes=train.classes"):
        DataSplits(train, other)
    rgb = from_arrays(_u8(3, 4, 4, 3), [0, 1, 2])
    with pytest.raises(DataError, match="1 channel\\(s\\) but test images have 3"):
        DataSplits(train, rgb)


def test_as_images_checks_images_alone():
    from budgetnas.data import as_images

    out = as_images(_u8(3, 5, 5, 3))
    assert out.shape == (3, 3, 5, 5) and out.dtype == np.uint8
    with pytest.raises(DataError, match="images of mixed sizes"):
        as_images([np.zeros((4, 4)), np.zeros((5, 5))])


def test_non_square_channels_first_arrays_warn():
    """(N, 3, 48, 64) read channels-last is 64 channels of 3x48 pixels: say so (review, 2026-12-02)."""
    x = np.zeros((4, 3, 48, 64), np.uint8)
    with pytest.raises(DataError, match="look channels-first"):
        from_arrays(x, [0, 1, 0, 1])
    assert from_arrays(x, [0, 1, 0, 1], channels_last=False).shape == (3, 48, 64)


def test_bfloat16_tensors_are_read():
    x = torch.rand(4, 6, 6).to(torch.bfloat16)
    d = from_arrays(x, [0, 1, 0, 1])
    assert d.images.dtype == np.float32 and d.shape == (1, 6, 6)


def test_a_channels_first_multispectral_stack_warns_but_channels_last_images_do_not():
    """(N, 16, 32, 32), a 16-band stack in channels-first order, loaded as 32 channels of 16x32
    pixels without a word (a review, 2026-12-06)."""
    import warnings

    with pytest.warns(UserWarning, match="look channels-first"):
        from_arrays(np.zeros((4, 16, 32, 32), np.uint8), [0, 1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((4, 32, 32, 16), (4, 32, 32, 3), (4, 28, 28, 1), (4, 64, 48, 5)):  # channels-last
            from_arrays(np.zeros(shape, np.uint8), [0, 1, 0, 1])


def test_a_non_square_channels_first_stack_of_any_band_count_warns():
    """(N, 16, 64, 48) read channels-last is 48 channels of 16x64 pixels: only square stacks, or 1,
    3 or 4 bands, warned (a review, 2026-12-06)."""
    for shape in ((4, 16, 64, 48), (4, 5, 4 + 5, 40), (4, 8, 200, 100)):
        with pytest.warns(UserWarning, match="look channels-first"):
            from_arrays(np.zeros(shape, np.uint8), [0, 1, 0, 1])


def test_a_list_mixing_integer_and_float_images_is_refused():
    # Stacked, uint8 pixels stayed 0..255 beside floats in [0, 1]: two scales in one training set.
    with pytest.raises(DataError, match="images of mixed types: image 0 is uint8 and image 1 float32"):
        from_arrays([np.full((4, 4), 200, np.uint8), np.full((4, 4), 0.8, np.float32)], [0, 1])
    with pytest.warns(UserWarning, match="beyond 0..255"):  # both integers: one scale
        d = from_arrays([np.full((4, 4), 200, np.uint8), np.full((4, 4), 300, np.int32)], [0, 1])
    assert d.images.dtype == np.float32 and d.images.max() == pytest.approx(300 / 255)


def test_float_labels_too_large_to_be_class_numbers_are_refused():
    with pytest.raises(DataError, match="too large to be a class number"):
        from_arrays(np.zeros((4, 4, 4), np.uint8), np.array([1e19, 2e19, 1.0, 2.0]))


def test_pillow_images_are_read_as_image_files_are():
    """A model fit on 16-bit Pillow images scored chance on those same images at predict: fit read
    raw 16-bit values (np.asarray), palette indices and alpha channels, predict read them as files
    are read (value / 65535, colours, alpha onto black). Both now read them the file way."""
    from PIL import Image

    from budgetnas.data._folder import pil_pixels

    rng = np.random.default_rng(0)
    wide = [Image.fromarray(a) for a in (rng.integers(0, 65535, (4, 6, 6))).astype(np.uint16)]
    d = from_arrays(wide, [0, 1, 0, 1])
    assert d.images.dtype == np.float32 and d.images.max() <= 1.0 and d.shape == (1, 6, 6)
    assert np.allclose(d.images[0, 0], pil_pixels(wide[0], None))
    rgba = Image.fromarray(rng.integers(0, 255, (6, 6, 4)).astype(np.uint8), "RGBA")
    pal = Image.fromarray(rng.integers(0, 255, (6, 6, 3)).astype(np.uint8)).convert("P")
    d = from_arrays([rgba, pal], [0, 1])
    assert d.shape == (3, 6, 6)  # transparency composited, the palette as colours
    assert (d.images[1].transpose(1, 2, 0) == np.asarray(pal.convert("RGB"))).all()
    gray8 = Image.fromarray(np.full((6, 6), 255, np.uint8))
    d = from_arrays([gray8, wide[0]], [0, 1])  # 8-bit and 16-bit: one unit, as in a folder
    assert d.images.dtype == np.float32 and d.images[0].max() == 1.0
    # Pillow images of several sizes are resized as a folder's are (they were refused, review 2026-12-06)
    seven = Image.fromarray(np.zeros((7, 7), np.uint8))
    with pytest.warns(UserWarning, match=r"the 3 images have 2 different sizes; resized 1 of them to 6x6 "
                                         r"\(the most common size\)"):
        d = from_arrays([gray8, seven, gray8], [0, 1, 0])
    assert d.shape == (1, 6, 6) and d.images[1].max() == 0 and d.images[0].min() == 255


def test_a_list_of_labels_mixing_strings_and_numbers_is_refused_as_an_array_of_them_is():
    with pytest.raises(DataError, match=r"labels mix types \(int, str\)"):
        from_arrays(np.zeros((2, 4, 4), np.uint8), ["a", 1])


def test_labels_stored_as_bytes_are_decoded_as_utf8():
    """(review, 2026-12-07) h5py and many exported files keep names as bytes: "café" was decoded as
    ASCII and the load ended in a UnicodeDecodeError."""
    x = np.zeros((4, 4, 4), np.uint8)
    d = from_arrays(x, np.array(["café".encode(), b"tea"] * 2))
    assert d.classes == ("café", "tea") and d.labels.tolist() == [0, 1, 0, 1]
    latin = from_arrays(x, np.array(["café".encode("latin-1"), b"tea"] * 2))  # (not UTF-8: read as Latin-1)
    assert latin.classes == ("café", "tea")


def test_mistakes_in_lists_of_images_and_labels_get_advice_that_fits(tmp_path):
    """(review, 2026-12-07) Gray images among colour ones of one size were told to "resize them";
    predict("photo.jpg") to use load_image_folder (which wants class folders); a .npz with a test
    split refused label columns that one without a split read."""
    from budgetnas.data import load_dataset

    with pytest.raises(DataError, match=r"one size but different channels: image 0 has 3 and image 3 1"):
        from_arrays([np.zeros((8, 8, 3), np.uint8)] * 3 + [np.zeros((8, 8), np.uint8)], [0, 1, 0, 1])
    with pytest.raises(DataError, match=r"for image files, pass the Pillow images: \[PIL\.Image\.open\(p\)"):
        from_arrays("photo.jpg", [0])
    with pytest.raises(DataError, match=r"image 0 in the list is a str.*PIL\.Image\.open"):
        from_arrays(["a.jpg", "b.jpg"], [0, 1])
    x = np.zeros((8, 4, 4), np.uint8)
    np.savez(tmp_path / "col.npz", x_train=x, y_train=np.array([[0], [1]] * 4), x_test=x[:4],
             y_test=np.array([[0], [1]] * 2))
    splits = load_dataset(tmp_path / "col.npz")
    assert splits.train.labels.tolist() == [0, 1] * 4 and splits.test.labels.tolist() == [0, 1] * 2
    np.savez(tmp_path / "hot.npz", x_train=x, y_train=np.eye(2)[[0, 1] * 4], x_test=x[:4], y_test=np.eye(2)[[0, 1] * 2])
    with pytest.raises(DataError, match=r"one-hot rows, save y\.argmax\(axis=1\)"):
        load_dataset(tmp_path / "hot.npz")
