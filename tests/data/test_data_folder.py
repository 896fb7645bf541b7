"""load_image_folder: layouts, modes, sizes, unreadable files and every folder error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from budgetnas.data import load_image_folder
from budgetnas.errors import DataError


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array)
    if mode is not None:
        im = im.convert(mode)
    im.save(path)


def _rgb(seed: int, h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _gray(seed: int, h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w), dtype=np.uint8)


def test_rgb_pngs_roundtrip_with_sorted_classes(tmp_path):
    expected = {}
    for i, cls in enumerate(["dog", "cat", "bird"]):
        for j in range(2):
            arr = _rgb(10 * i + j)
            _save(tmp_path / cls / f"{j}.png", arr)
            expected[(cls, j)] = arr
    d = load_image_folder(tmp_path)
    assert d.classes == ("bird", "cat", "dog")
    assert d.shape == (3, 8, 8) and d.images.dtype == np.uint8 and len(d) == 6
    assert d.labels.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(d.images[2], expected[("cat", 0)].transpose(2, 0, 1))
    assert d.name == tmp_path.name


def test_all_gray_gives_one_channel_and_mixed_gives_rgb(tmp_path):
    _save(tmp_path / "gray" / "a" / "0.png", _gray(0))
    _save(tmp_path / "gray" / "b" / "0.png", _gray(1))
    _save(tmp_path / "gray" / "b" / "1.bmp", _gray(2), mode="1")
    d = load_image_folder(tmp_path / "gray")
    assert d.shape == (1, 8, 8)
    np.testing.assert_array_equal(d.images[0, 0], _gray(0))
    assert set(np.unique(d.images[2]).tolist()) <= {0, 255}

    _save(tmp_path / "mixed" / "a" / "0.png", _gray(3))
    _save(tmp_path / "mixed" / "b" / "0.png", _rgb(4))
    m = load_image_folder(tmp_path / "mixed")
    assert m.shape == (3, 8, 8)
    for c in range(3):  # gray image repeated into the three channels
        np.testing.assert_array_equal(m.images[0, c], _gray(3))

    forced = load_image_folder(tmp_path / "mixed", grayscale=True)
    assert forced.shape == (1, 8, 8)
    rgb_only = load_image_folder(tmp_path / "gray", grayscale=False)
    assert rgb_only.shape == (3, 8, 8)


def test_rgba_palette_16bit_and_upper_case_extensions(tmp_path):
    rgba = np.dstack([_rgb(0), np.full((8, 8), 128, np.uint8)])
    _save(tmp_path / "a" / "x.PNG", rgba)
    _save(tmp_path / "a" / "y.gif", _rgb(1), mode="P")
    _save(tmp_path / "b" / "z.webp", _rgb(2))
    im16 = Image.fromarray(_gray(3).astype(np.uint16) * 257)
    assert im16.mode.startswith("I;16")
    im16.save(tmp_path / "b" / "w.png")
    d = load_image_folder(tmp_path)
    assert d.shape == (3, 8, 8) and len(d) == 4
    # A 16-bit image keeps its precision: the folder is float32 in uint8's units (value / 255).
    assert d.images.dtype == np.float32
    half_alpha = (_rgb(0).astype(np.uint16) * 128 + 127) // 255  # composited onto black
    np.testing.assert_allclose(d.images[0], half_alpha.transpose(2, 0, 1) / 255, atol=1e-6)
    np.testing.assert_allclose(d.images[2, 0], _gray(3) / 255, atol=1e-6)


def test_16bit_images_keep_their_precision(tmp_path):
    """A 12-bit microscopy PNG has 4096 levels; taking its top byte left 16 (review, 2026-12-02)."""
    levels = (np.arange(64, dtype=np.uint16) * 64).reshape(8, 8)  # 64 distinct 12-bit values
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.fromarray(levels).save(tmp_path / cls / "x.png")
    d = load_image_folder(tmp_path)
    assert d.images.dtype == np.float32 and len(np.unique(d.images[0])) == 64
    np.testing.assert_allclose(d.images[0, 0], levels / 65535, rtol=1e-6)


def test_32bit_integer_images_beyond_16_bits_are_not_clipped_unsaid(tmp_path):
    """(review E, 2026-12-07) A class of "I" TIFFs valued 100000..150000 was clipped to 65535: one
    constant white image, with no word. Such files are skipped and named; those within 16 bits read."""
    rng = np.random.default_rng(0)
    pixels = {}
    for cls, lo in (("a", 0), ("b", 10_000), ("c", 100_000)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            pixels[cls, i] = rng.integers(lo, lo + 50_000, (8, 8)).astype(np.int32)
            Image.fromarray(pixels[cls, i], "I").save(tmp_path / cls / f"{i}.tif")
    with pytest.warns(UserWarning, match=r"skipped 2 of 6 files.*range from 1\d{5} to 1\d{5}, beyond 0..65535"):
        d = load_image_folder(tmp_path)
    assert d.classes == ("a", "b") and len(d) == 4
    np.testing.assert_allclose(d.images[0, 0], pixels["a", 0] / 65535, rtol=1e-6)


def test_three_messages_say_what_is_so(tmp_path):
    """(review E, 2026-12-07) 16-bit images were counted among the float images 'holding values up
    to 240'; a mixed-size folder resized to another aspect ratio did not say so; (8, 8) and (8, 8, 1)
    arrays were refused as 'mixed sizes: 8x8 and 8x8x1'."""
    from budgetnas.data import from_arrays

    _save(tmp_path / "f" / "a" / "0.png", _gray(0))
    Image.fromarray(_gray(1).astype(np.uint16) * 257).save(tmp_path / "f" / "a" / "1.png")  # 16-bit, in 0..1
    (tmp_path / "f" / "b").mkdir()
    Image.fromarray(np.full((8, 8), 240.0, np.float32), "F").save(tmp_path / "f" / "b" / "2.tif")
    with pytest.warns(UserWarning, match=r"^1 float image\(s\) .* up to 240"):
        load_image_folder(tmp_path / "f")
    _save(tmp_path / "m" / "a" / "0.png", _rgb(0, 8, 8))
    _save(tmp_path / "m" / "a" / "1.png", _rgb(1, 8, 8))
    _save(tmp_path / "m" / "b" / "0.png", _rgb(2, 8, 16))
    with pytest.warns(UserWarning, match=r"resized 1 of 3 to 8x8 \(the most common size\), which changes the "
                                         r"aspect ratio of some"):
        load_image_folder(tmp_path / "m")
    d = from_arrays([_gray(0), _gray(1)[..., None]], [0, 1])
    assert d.shape == (1, 8, 8)


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    _save(tmp_path / "a" / "0.png", _rgb(0))
    _save(tmp_path / "b" / "0.png", _rgb(1))
    _save(tmp_path / "b" / ".hidden.png", _rgb(2))
    (tmp_path / "b" / "._0.png").write_bytes(b"macos resource fork")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    _save(tmp_path / ".cache" / "0.png", _rgb(3))
    _save(tmp_path / "__MACOSX" / "0.png", _rgb(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_image_folder(tmp_path)
    assert d.classes == ("a", "b") and len(d) == 2


def test_corrupt_files_are_skipped_and_counted_in_one_warning(tmp_path):
    for cls in ("a", "b"):
        for j in range(3):
            _save(tmp_path / cls / f"{j}.png", _rgb(j))
    (tmp_path / "a" / "bad.jpg").write_bytes(b"this is not a jpeg")
    _save(tmp_path / "b" / "cut.jpg", _rgb(9, 32, 32))
    full = (tmp_path / "b" / "cut.jpg").read_bytes()
    (tmp_path / "b" / "cut.jpg").write_bytes(full[: len(full) // 2])
    with pytest.warns(UserWarning) as record:
        d = load_image_folder(tmp_path)
    messages = [str(w.message) for w in record if "could not be read" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("skipped 2 of 8 files that could not be read, e.g. ")
    assert "bad.jpg" in messages[0]
    assert len(d) == 6


def test_mixed_sizes_resize_to_most_common_with_warning(tmp_path):
    for j in range(3):
        _save(tmp_path / "a" / f"{j}.png", _rgb(j, 8, 8))
    _save(tmp_path / "b" / "0.png", _rgb(5, 8, 8))
    _save(tmp_path / "b" / "1.png", _rgb(6, 16, 12))
    with pytest.warns(UserWarning, match=r"resized 1 of 5 to 8x8 \(the most common size\).*size="):
        d = load_image_folder(tmp_path)
    assert d.shape == (3, 8, 8) and len(d) == 5


def test_explicit_size_resizes_everything_silently(tmp_path):
    _save(tmp_path / "a" / "0.png", _rgb(0, 8, 8))
    _save(tmp_path / "b" / "0.png", _rgb(1, 16, 12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_image_folder(tmp_path, size=(6, 10))
    assert d.shape == (3, 6, 10)
    assert load_image_folder(tmp_path, size=5).shape == (3, 5, 5)
    with pytest.raises(DataError, match=r"size must be \(height, width\)"):
        load_image_folder(tmp_path, size=(0, 4))


def test_many_files_keep_their_order(tmp_path):
    # labels and pixels line up across many files in sorted order
    for j in range(80):
        _save(tmp_path / "a" / f"{j:03d}.png", np.full((4, 4), j, np.uint8))
        _save(tmp_path / "b" / f"{j:03d}.png", np.full((4, 4), 100 + j, np.uint8))
    d = load_image_folder(tmp_path)
    assert len(d) == 160
    expected = np.concatenate([np.arange(80), 100 + np.arange(80)])
    np.testing.assert_array_equal(d.images[:, 0, 0, 0], expected)
    np.testing.assert_array_equal(d.labels, np.repeat([0, 1], 80))


def test_empty_class_folder_is_dropped_with_warning(tmp_path):
    _save(tmp_path / "a" / "0.png", _rgb(0))
    _save(tmp_path / "b" / "0.png", _rgb(1))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "broken.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        with pytest.warns(UserWarning, match=r"\['c'\].*no readable images and were left out"):
            d = load_image_folder(tmp_path)
    assert d.classes == ("a", "b")


def test_empty_folder_leaving_one_class_is_an_error(tmp_path):
    _save(tmp_path / "a" / "0.png", _rgb(0))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        with pytest.raises(DataError, match="only class 'a' .* has readable images.*at least two"):
            load_image_folder(tmp_path)


def test_given_classes_keep_empty_ones_and_refuse_unknown_folders(tmp_path):
    _save(tmp_path / "b" / "0.png", _rgb(0))
    _save(tmp_path / "a" / "0.png", _rgb(1))
    with pytest.warns(UserWarning, match=r"\['z'\] have no readable images.*stay in classes"):
        d = load_image_folder(tmp_path, classes=["b", "a", "z"])
    assert d.classes == ("b", "a", "z") and d.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"folder\(s\) \['b'\] that are not among the given"):
        load_image_folder(tmp_path, classes=["a", "z"])


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        load_image_folder(tmp_path / "file.txt")
    flat = tmp_path / "flat"
    _save(flat / "0.png", _rgb(0))
    expected = r"no class subfolders .*holds 1 images directly.*subfolder"
    with pytest.raises(DataError, match=expected):
        load_image_folder(flat)
    single = tmp_path / "single"
    _save(single / "cat" / "0.png", _rgb(0))
    with pytest.raises(DataError, match="found a single class 'cat'.*at least two"):
        load_image_folder(single)
    # An archive unpacked into a folder of its own name: point at that folder (it was told to add classes)
    deep = tmp_path / "deep"
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            _save(deep / "mydata" / split / c / "0.png", _rgb(0))
    with pytest.raises(DataError, match=r"deep holds one folder, 'mydata', which holds test, train: if those "
                                        r"are the classes \(or train/ and test/ folders of them\), give .*mydata as"):
        load_image_folder(deep)
    from budgetnas.data import load_dataset

    with pytest.raises(DataError, match=r"give .*deep/mydata as the data"):
        load_dataset(str(deep))
    assert load_dataset(str(deep / "mydata")).train.classes == ("cat", "dog")
    no_images = tmp_path / "noimg"
    (no_images / "a").mkdir(parents=True)
    (no_images / "b").mkdir()
    (no_images / "a" / "x.txt").write_text("x")
    with pytest.raises(DataError, match="no image files .*check the path and the file extensions"):
        load_image_folder(no_images)
    unreadable = tmp_path / "unreadable"
    for cls in ("a", "b"):
        (unreadable / cls).mkdir(parents=True)
        (unreadable / cls / "x.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="skipped 2 of 2"):
        with pytest.raises(DataError, match="none of the 2 image files .* could be read"):
            load_image_folder(unreadable)
    with pytest.raises(DataError, match="grayscale must be None, True or False"):
        load_image_folder(unreadable, grayscale="yes")


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored 20x10 with Orientation=6 is displayed 10 wide and 20 high."""
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white as stored
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    im.save(tmp_path / "a" / "0.jpg", exif=exif, quality=95)
    Image.fromarray(np.zeros((20, 10, 3), np.uint8)).save(tmp_path / "b" / "0.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # upright, both are 20x10: no mixed sizes
        d = load_image_folder(tmp_path)
    assert d.shape == (3, 20, 10)
    assert d.images[0, :, :5].mean() > 200 and d.images[0, :, 15:].mean() < 50  # white on top now


def test_max_side_shrinks_large_images_while_reading(tmp_path):
    _save(tmp_path / "a" / "0.jpg", _rgb(0, 300, 400))
    _save(tmp_path / "b" / "0.png", _rgb(1, 300, 400))
    _save(tmp_path / "b" / "1.png", _rgb(2, 30, 40))  # smaller than the bound: left alone
    with pytest.warns(UserWarning, match=r"after shrinking to at most 64 pixels a side"):
        d = load_image_folder(tmp_path, max_side=64)
    assert d.shape == (3, 48, 64)  # 300x400 kept its aspect ratio; the most common size wins
    with pytest.raises(DataError, match="max_side must be a positive"):
        load_image_folder(tmp_path, max_side=0)


def test_all_different_sizes_resize_to_the_median_not_the_largest(tmp_path):
    """Review, 2026-12-02: every size once used to pick the largest image (a 4000x3000 photo)."""
    for j, (h, w) in enumerate([(10, 10), (12, 16), (20, 14), (200, 300)]):
        _save(tmp_path / ("a" if j % 2 else "b") / f"{j}.png", _rgb(j, h, w))
    with pytest.warns(UserWarning, match=r"to 16x15 \(the median height and width\)"):
        d = load_image_folder(tmp_path)
    assert d.shape == (3, 16, 15)


def test_unread_image_formats_and_loose_images_are_reported(tmp_path):
    _save(tmp_path / "a" / "0.png", _rgb(0))
    _save(tmp_path / "b" / "0.png", _rgb(1))
    _save(tmp_path / "b" / "1.tif", _rgb(2))  # TIFF is read
    (tmp_path / "b" / "2.HEIC").write_bytes(b"not readable by Pillow")
    (tmp_path / "b" / "labels.csv").write_text("a,b\n")  # not an image: silently left alone
    _save(tmp_path / "stray.jpg", _rgb(3))
    with pytest.warns(UserWarning) as record:
        d = load_image_folder(tmp_path)
    assert len(d) == 3
    text = " | ".join(str(w.message) for w in record)
    assert "ignored 1 image file(s)" in text and ".heic: 1" in text and "csv" not in text
    assert "ignored 1 image(s) directly in" in text and "stray.jpg" in text


def test_class_folders_that_all_hold_the_same_subfolders_warn(tmp_path):
    for fold in ("fold1", "fold2"):
        for cls in ("cat", "dog"):
            _save(tmp_path / fold / cls / "0.png", _rgb(0))
    with pytest.warns(UserWarning, match=r"every class folder .* holds the same subfolders \(cat, dog\)"):
        d = load_image_folder(tmp_path)
    assert d.classes == ("fold1", "fold2")


def test_32bit_integer_images_are_scaled_by_their_mode_not_their_values(tmp_path):
    """A dark 32-bit TIFF (max 200) was read as value / 255 and a bright one (max 300) as
    value / 65535, so 200 came out 170x brighter than 300 (review, 2026-12)."""
    for cls, value in (("a", 200), ("b", 300)):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((8, 8), value, np.int32)).save(tmp_path / cls / "x.tif")
    d = load_image_folder(tmp_path)
    assert d.images.dtype == np.float32
    np.testing.assert_allclose(d.images[:, 0, 0, 0], [200 / 65535, 300 / 65535], rtol=1e-6)


def test_float_tiffs_are_read_as_stored_not_rounded(tmp_path):
    """Float TIFFs in [0, 1] were rounded to integers, leaving binary 0/1 images (review, 2026-12)."""
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    for cls, arr in (("a", values), ("b", values[::-1].copy())):
        (tmp_path / cls).mkdir()
        Image.fromarray(arr).save(tmp_path / cls / "x.tif")
    d = load_image_folder(tmp_path)
    assert d.images.dtype == np.float32
    np.testing.assert_allclose(d.images[0, 0], values, rtol=1e-6)
    nan = values.copy()
    nan[0, 0] = np.nan
    Image.fromarray(nan).save(tmp_path / "a" / "nan.tif")
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 files.*nan\.tif.*NaN"):
        assert len(load_image_folder(tmp_path)) == 2


def test_explicit_size_does_not_squash_a_wide_image_first(tmp_path):
    """size=(32, 32) on a 400x100 image shrank it to 32x8 (longer side = 32), then stretched the
    8 rows back to 32, erasing horizontal detail (review, 2026-12)."""
    rows = np.arange(100)[:, None]
    stripes = np.broadcast_to(127.5 + 127.5 * np.sin(2 * np.pi * rows / 10), (100, 400)).astype(np.uint8)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.fromarray(stripes).save(tmp_path / cls / "x.png")
    d = load_image_folder(tmp_path, size=(32, 32))
    direct = np.asarray(Image.fromarray(stripes).resize((32, 32), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(d.images[0, 0], direct)
    assert d.images[0, 0, :, 0].std() > 50  # the stripes survive


def test_symlinked_subfolders_are_followed_once(tmp_path):
    """A class's symlinked subfolder (b/more -> elsewhere) was silently left out, since os.walk
    does not follow links by default (review, 2026-12); a link back up must not loop."""
    for cls in ("a", "b"):
        _save(tmp_path / "data" / cls / "0.png", _gray(0))
    for j in range(3):
        _save(tmp_path / "elsewhere" / f"{j}.png", _gray(j + 1))
    (tmp_path / "data" / "b" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "data" / "b" / "loop").symlink_to(tmp_path / "data" / "b", target_is_directory=True)
    d = load_image_folder(tmp_path / "data")
    assert np.bincount(d.labels).tolist() == [1, 4]


def test_nas_thumbnail_folders_are_not_read_as_images(tmp_path):
    """A Synology NAS writes thumbnails into cat/@eaDir/x.jpg/SYNOFILE_THUMB_M.jpg; they were read
    as more training images of the class (review, 2026-12)."""
    for cls in ("a", "b"):
        _save(tmp_path / cls / "x.png", _rgb(0))
        _save(tmp_path / cls / "@eaDir" / "x.png" / "SYNOFILE_THUMB_M.png", _rgb(1))
    assert len(load_image_folder(tmp_path)) == 2


def test_class_names_match_across_unicode_spellings_of_accents(tmp_path):
    # macOS writes "café" decomposed (NFD), most systems composed (NFC): a test folder copied
    # from another system must still line up with the training folder's classes.
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    for j in range(2):
        _save(tmp_path / "train" / nfd / f"{j}.png", _gray(j))
        _save(tmp_path / "train" / "tea" / f"{j}.png", _gray(10 + j))
        _save(tmp_path / "test" / nfc / f"{j}.png", _gray(20 + j))
        _save(tmp_path / "test" / "tea" / f"{j}.png", _gray(30 + j))
    train = load_image_folder(tmp_path / "train")
    test = load_image_folder(tmp_path / "test", classes=train.classes)
    assert train.classes == test.classes == (nfd, "tea")
    assert np.bincount(test.labels).tolist() == [2, 2]
    # Both spellings side by side would be two classes that print the same: refused.
    _save(tmp_path / "train" / nfc / "9.png", _gray(40))
    with pytest.raises(DataError, match="differ only in how an accent is encoded"):
        load_image_folder(tmp_path / "train")


def test_float_images_on_a_0_255_scale_beside_8_bit_ones_warn(tmp_path):
    # 32-bit float TIFFs are read as stored; 8-bit PNGs as value / 255: a folder of both held
    # values up to 247 beside values in [0, 1], without a word (a data review, 2026-12-06).
    import numpy as np
    import pytest
    from PIL import Image

    from budgetnas.data import load_image_folder

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((6, 6), 200, np.uint8)).save(tmp_path / cls / "p.png")
        Image.fromarray(np.full((6, 6), 247.0, np.float32)).save(tmp_path / cls / "f.tif")
    with pytest.warns(UserWarning, match=r"2 float image\(s\) .* hold values up to 247, read as stored"):
        load_image_folder(tmp_path)
    for cls in ("a", "b"):
        Image.fromarray(np.full((6, 6), 0.5, np.float32)).save(tmp_path / cls / "f.tif")  # (in 0..1: one scale)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image_folder(tmp_path).images.max() <= 1.0


# ----------------------------------------------------------------------------- the folder cache


def _aged(root: Path, seconds: float = 60.0) -> None:
    """Every file under ``root`` last modified ``seconds`` ago (a folder being written, with files
    changed in the last 2 s, is not cached)."""
    import os
    import time

    for f in root.rglob("*"):
        if f.is_file():
            os.utime(f, (time.time() - seconds, time.time() - seconds))


def _counting_decodes(monkeypatch) -> list[str]:
    import budgetnas.data._folder as folder

    calls: list[str] = []
    real = folder._decode

    def counted(path, *a, **kw):
        calls.append(path)
        return real(path, *a, **kw)

    monkeypatch.setattr(folder, "_decode", counted)
    return calls


def _cache_files(monkeypatch, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("BUDGETNAS_CACHE", str(cache))
    return cache / "folders"


def test_a_folder_is_decoded_once_and_again_only_when_a_file_changes(tmp_path, monkeypatch):
    """A resumed search, a worker or the final training read the arrays back from the cache
    (CIFAR-10's 60,000 JPEGs: 17 s -> 1.6 s on 2 cores); any file added, removed or changed
    (name, size or modification time) decodes the folder again."""
    cached = _cache_files(monkeypatch, tmp_path)
    root = tmp_path / "data"
    for i, cls in enumerate(["cat", "dog"]):
        for j in range(3):
            _save(root / cls / f"{j}.png", _rgb(10 * i + j))
    _aged(root)
    decodes = _counting_decodes(monkeypatch)
    first = load_image_folder(root)
    assert len(decodes) == 6 and len(list(cached.glob("*.npz"))) == 1
    (tmp_path / "link").symlink_to(root)
    again = load_image_folder(tmp_path / "link")  # (however the path is spelled)
    assert len(decodes) == 6  # nothing decoded
    np.testing.assert_array_equal(again.images, first.images)
    assert (again.labels.tolist(), again.classes) == (first.labels.tolist(), first.classes)
    assert again.name == "link"  # (named as given, as a fresh read names it)
    assert again.fingerprint() == first.fingerprint()  # (so a resume with it is allowed)

    _save(root / "dog" / "1.png", _rgb(99))  # changed in place
    _aged(root)
    changed = load_image_folder(root)
    assert len(decodes) == 12
    np.testing.assert_array_equal(changed.images[4], _rgb(99).transpose(2, 0, 1))
    (root / "cat" / "0.png").unlink()  # removed
    assert len(load_image_folder(root)) == 5 and len(decodes) == 17
    _save(root / "cat" / "new.png", _rgb(7))  # added (just now: not cached until it is 2 s old)
    assert len(load_image_folder(root)) == 6 and len(decodes) == 23
    assert len(load_image_folder(root)) == 6 and len(decodes) == 29
    _aged(root)
    load_image_folder(root)
    load_image_folder(root)
    assert len(decodes) == 35
    # Other reading options are cached apart; the first folder's entry stays.
    small = load_image_folder(root, size=(4, 4))
    assert small.shape == (3, 4, 4) and len(decodes) == 41
    assert load_image_folder(root).shape == (3, 8, 8) and len(decodes) == 41
    assert len(list(cached.glob("*.npz"))) == 2


def test_the_cache_repeats_the_warnings_and_never_fails_a_load(tmp_path, monkeypatch):
    cached = _cache_files(monkeypatch, tmp_path)
    root = tmp_path / "data"
    for i, cls in enumerate(["cat", "dog"]):
        for j in range(2):
            _save(root / cls / f"{j}.png", _rgb(10 * i + j, h=8 + j))  # two sizes
    _aged(root)
    decodes = _counting_decodes(monkeypatch)
    for _ in range(2):  # decoded, then from the cache: the same warning, pointing at the caller
        with pytest.warns(UserWarning, match="2 different sizes") as seen:
            assert len(load_image_folder(root)) == 4
        assert [w.filename for w in seen] == [__file__]
    assert len(decodes) == 4
    (entry,) = cached.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # damaged (a disk filled up, a killed copy)
    with pytest.warns(UserWarning, match="2 different sizes"):
        assert len(load_image_folder(root)) == 4
    assert len(decodes) == 8  # decoded again, and the entry written anew
    with pytest.warns(UserWarning, match="2 different sizes"):
        load_image_folder(root)
    assert len(decodes) == 8
    # A cache that cannot be written (its folder is a file): the load goes on without it.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file")
    monkeypatch.setenv("BUDGETNAS_CACHE", str(blocked))
    with pytest.warns(UserWarning, match="2 different sizes"):
        assert len(load_image_folder(root)) == 4
    # Turned off: every load decodes.
    monkeypatch.setenv("BUDGETNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BUDGETNAS_FOLDER_CACHE", "off")
    with pytest.warns(UserWarning, match="2 different sizes"):
        load_image_folder(root)
    assert len(decodes) == 16


def test_a_folder_with_a_file_that_could_not_be_read_is_read_afresh_each_time(tmp_path, monkeypatch):
    """A file skipped today (too large for PIL.Image.MAX_IMAGE_PIXELS, unreadable, on a network drive
    that came back) may be read tomorrow with nothing about it changed: such a folder is not cached."""
    from PIL import Image

    cached = _cache_files(monkeypatch, tmp_path)
    root = tmp_path / "data"
    for i, cls in enumerate(["cat", "dog"]):
        for j in range(2):
            _save(root / cls / f"{j}.png", _rgb(10 * i + j))
    _save(root / "dog" / "big.png", _rgb(5, h=40, w=40))
    _aged(root)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # (x2 raises DecompressionBombError: 1,600 px)
    for _ in range(2):
        with pytest.warns(UserWarning, match="skipped 1 of 5 files"):
            assert len(load_image_folder(root)) == 4
    assert not list(cached.glob("*.npz"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.warns(UserWarning, match="different sizes"):
        assert len(load_image_folder(root)) == 5  # read now, and cached from now on
    assert len(list(cached.glob("*.npz"))) == 1


def test_a_copy_that_kept_size_and_times_is_decoded_again(tmp_path, monkeypatch):
    """cp -p or rsync of a same-size image (a BMP) keeps its size and modification time: the
    inode and change time still tell it apart."""
    import os
    import shutil

    _cache_files(monkeypatch, tmp_path)
    root = tmp_path / "data"
    for i, cls in enumerate(["cat", "dog"]):
        _save(root / cls / "0.bmp", _rgb(i))
    _aged(root)
    first = load_image_folder(root)
    other = tmp_path / "other.bmp"
    _save(other, _rgb(42))
    st = (root / "dog" / "0.bmp").stat()
    assert other.stat().st_size == st.st_size
    shutil.copyfile(other, root / "dog" / "0.bmp")
    os.utime(root / "dog" / "0.bmp", ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p does
    again = load_image_folder(root)
    np.testing.assert_array_equal(again.images[1], _rgb(42).transpose(2, 0, 1))
    assert not np.array_equal(again.images, first.images)


def test_an_undecodable_folder_name_is_read_with_the_cache(tmp_path, monkeypatch):
    """A folder name that is not UTF-8 (an old zip extracted on Linux) is read as before."""
    import os

    cached = _cache_files(monkeypatch, tmp_path)
    root = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))
    for i, cls in enumerate(["cat", "dog"]):
        _save(root / cls / "0.png", _rgb(i))
    _aged(root)
    assert len(load_image_folder(root)) == 2 and len(load_image_folder(root)) == 2
    assert len(list(cached.glob("*.npz"))) == 1


def test_a_killed_cache_write_leaves_nothing_that_is_read(tmp_path, monkeypatch):
    import os

    cached = _cache_files(monkeypatch, tmp_path)
    root = tmp_path / "data"
    for i, cls in enumerate(["cat", "dog"]):
        _save(root / cls / "0.png", _rgb(i))
    _aged(root)
    cached.mkdir(parents=True)
    dead = cached / "data-0000000000000000.npz.tmp999999999"  # a pid no process has
    dead.write_bytes(b"half")
    mine = cached / f"x.npz.tmp{os.getpid()}"  # this process's own, in use: left alone
    mine.write_bytes(b"in use")
    load_image_folder(root)
    assert not dead.exists() and mine.exists()
    assert len(list(cached.glob("*.npz"))) == 1


def _png_rgb16(path, pixels: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow writes none): (H, W, 3) uint16, filter 0 on every row."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    h, w, _ = pixels.shape
    raw = b"".join(b"\0" + pixels[r].astype(">u2").tobytes() for r in range(h))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16bit_colour_images_read_at_8_bits_say_so_and_16bit_gray_ones_of_mixed_sizes_load_as_rgb(tmp_path):
    """(review, 2026-12-07) The README said 16-bit images keep their precision: Pillow reads 16-bit
    colour at 8 bits a channel, unsaid; and 16-bit gray images of two sizes read with
    grayscale=False raised TypeError (Pillow resizes no 3-channel float image)."""
    levels = (np.arange(48, dtype=np.uint16).reshape(4, 4, 3) * 1000)
    for cls in ("a", "b"):
        _png_rgb16(tmp_path / "rgb" / cls / "x.png", levels)
    with pytest.warns(UserWarning, match=r"2 of the 2 images .* are 16-bit colour, which Pillow reads at 8 bits"):
        d = load_image_folder(tmp_path / "rgb")
    assert d.images.dtype == np.uint8  # (what Pillow gives: the top byte)
    for cls, size in (("a", 20), ("b", 24)):
        (tmp_path / "gray" / cls).mkdir(parents=True)
        Image.fromarray((np.arange(size * size, dtype=np.uint16) * 97 % 65535).astype(np.uint16).reshape(size, size)) \
            .save(tmp_path / "gray" / cls / "x.png")
    with pytest.warns(UserWarning, match="different sizes"):
        g = load_image_folder(tmp_path / "gray", grayscale=False)
    assert g.images.dtype == np.float32 and g.shape[0] == 3
    np.testing.assert_array_equal(g.images[:, 0], g.images[:, 1])  # (gray, repeated)


def test_the_folder_cache_removes_the_least_recently_used_folders_past_its_size(tmp_path, monkeypatch):
    """The cache grew for ever: one file per folder, size and cache version ever read (a session-30
    leftover). Past FOLDER_CACHE_TOTAL_BYTES the least recently used go, a read counting as a use."""
    import os
    import time

    from budgetnas.data import _folder

    cached = _cache_files(monkeypatch, tmp_path)
    roots = []
    for k in range(3):
        root = tmp_path / f"set{k}"
        for i, cls in enumerate(["cat", "dog"]):
            for j in range(2):
                _save(root / cls / f"{j}.png", _rgb(100 * k + 10 * i + j, h=16, w=16))
        _aged(root)
        roots.append(root)
    load_image_folder(roots[0])
    load_image_folder(roots[1])
    one = max(f.stat().st_size for f in cached.glob("*.npz"))
    monkeypatch.setattr(_folder, "FOLDER_CACHE_TOTAL_BYTES", 2 * one + one // 2)  # room for two
    by_root = {f.name.split("-")[0]: f for f in cached.glob("*.npz")}
    for name, age in (("set0", 30), ("set1", 60)):  # set1 older than set0...
        os.utime(by_root[name], (time.time() - age, time.time() - age))
    load_image_folder(roots[1])  # ...until read now: set0 is the least recently used
    load_image_folder(roots[2])  # a third folder: one must go
    assert sorted(f.name.split("-")[0] for f in cached.glob("*.npz")) == ["set1", "set2"]
    calls = []
    real = _folder._decode_folder
    monkeypatch.setattr(_folder, "_decode_folder", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    assert len(load_image_folder(roots[1])) == 4 and not calls  # (the kept one still serves)
    # A cache smaller than one folder keeps the folder just written.
    monkeypatch.setattr(_folder, "FOLDER_CACHE_TOTAL_BYTES", 1)
    load_image_folder(roots[0])
    assert [f.name.split("-")[0] for f in cached.glob("*.npz")] == ["set0"]
