"""load_dataset: names, paths (folders, .npz, archives) and safe archive extraction."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from budgetnas.data import KNOWN_DATASETS, load_dataset
from budgetnas.errors import DataError


def _image_folder(
    root: Path, classes=("a", "b"), per_class: int = 3, size: int = 8, mode: str = "RGB"
) -> Path:
    for i, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            arr = np.full(shape, 20 * i + j, np.uint8)
            Image.fromarray(arr).save(root / cls / f"{j}.png")
    return root


def test_digits():
    pytest.importorskip("sklearn")
    splits = load_dataset("Digits")
    assert splits.test is None
    d = splits.train
    assert len(d) == 1797 and d.shape == (1, 8, 8) and d.images.dtype == np.uint8
    assert d.images.max() == 255 and d.images.min() == 0
    assert d.classes == tuple(str(i) for i in range(10))
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(d.labels, load_digits().target)
    np.testing.assert_array_equal(d.images[:, 0], np.rint(load_digits().images * (255 / 16)))


def test_digits_read_without_importing_sklearn_are_load_digits_own(monkeypatch, tmp_path):
    """The demo reads scikit-learn's file without importing scikit-learn (1.4 s of a demo's
    start); where the file is not there, or not as expected, load_digits gives the same arrays."""
    pytest.importorskip("sklearn")
    import budgetnas.data._datasets as datasets

    assert datasets._digits_csv() is not None  # (the fast path is the one this machine takes)
    done = subprocess.run([sys.executable, "-c", "import sys; from budgetnas.data import load_dataset; "
                           "load_dataset('digits'); print('sklearn' in sys.modules)"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
    fast = load_dataset("digits").train
    bad = tmp_path / "digits.csv.gz"
    for text in (None, "1,2,3\n"):  # no file; a file that is not the table
        if text is not None:
            bad.write_bytes(gzip.compress(text.encode()))
        monkeypatch.setattr(datasets, "_digits_csv", lambda: None if text is None else bad)
        slow = load_dataset("digits").train
        np.testing.assert_array_equal(slow.images, fast.images)
        np.testing.assert_array_equal(slow.labels, fast.labels)


def test_digits_without_sklearn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match=r"pip install scikit-learn.*budgetnas\[demo\]"):
        load_dataset("digits")


def test_unknown_name_lists_known_names(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("imagenet-1k")
    msg = str(info.value)
    assert "unknown dataset 'imagenet-1k'" in msg
    for name in KNOWN_DATASETS:
        assert name in msg
    with pytest.raises(DataError, match="takes a dataset name or a path, got a int"):
        load_dataset(3)


def test_train_and_test_folders(tmp_path):
    _image_folder(tmp_path / "ds" / "train", per_class=3)
    _image_folder(tmp_path / "ds" / "test", per_class=2, size=12, mode="L")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (12x12 to 8x8: the same aspect ratio, nothing to warn of)
        splits = load_dataset(tmp_path / "ds")
    assert len(splits.train) == 6 and len(splits.test) == 4
    # test images follow train: resized to its size, converted to its channels, same classes
    assert splits.test.shape == splits.train.shape == (3, 8, 8)
    assert splits.test.classes == splits.train.classes == ("a", "b")
    assert splits.train.name == "ds" and splits.test.name == "ds-test"


def test_a_test_folder_of_another_aspect_ratio_is_warned_of(tmp_path):
    """(review E, 2026-12-07) Test images of 48x24 beside 24x48 training ones were stretched unsaid;
    those of the same aspect ratio (12x12 beside 8x8, above) are not warned of."""
    for split, shape in (("train", (24, 48)), ("test", (48, 24))):
        for cls in ("a", "b"):
            (tmp_path / "ds" / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "ds" / split / cls / "0.png")
    with pytest.warns(UserWarning, match=r"2 of the 2 images in .*test .*48x24\) have another aspect ratio than "
                                         r"24x48.*stretched"):
        splits = load_dataset(tmp_path / "ds")
    assert splits.test.shape == (1, 24, 48)


def test_train_folder_only_and_extra_folders(tmp_path):
    _image_folder(tmp_path / "ds" / "train")
    _image_folder(tmp_path / "ds" / "extra")
    with pytest.warns(UserWarning, match=r"ignored folder\(s\) \['extra'\].*only train/ and test/"):
        splits = load_dataset(str(tmp_path / "ds"))
    assert splits.test is None and len(splits.train) == 6


def test_a_labelled_val_folder_is_used_not_ignored(tmp_path):
    """train/ + val/ (Kaggle's, ImageNet's layout) lost the labelled val/ images with a warning
    (a review, 2026-12-06): without test/ it is the test set; beside test/ it joins train/."""
    import warnings

    _image_folder(tmp_path / "ds" / "train", per_class=3)
    _image_folder(tmp_path / "ds" / "Valid", per_class=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = load_dataset(tmp_path / "ds")
    assert len(splits.train) == 6 and len(splits.test) == 4 and splits.test.classes == ("a", "b")
    _image_folder(tmp_path / "ds" / "test", per_class=1)
    splits = load_dataset(tmp_path / "ds")
    assert len(splits.train) == 10 and len(splits.test) == 2
    assert sorted(np.bincount(splits.train.labels).tolist()) == [5, 5]
    _image_folder(tmp_path / "ds" / "Valid", classes=("a", "z"), per_class=1)
    with pytest.raises(DataError, match=r"in the Valid folder; its class folders must match train/'s"):
        load_dataset(tmp_path / "ds")


def test_a_val_folder_of_16_bit_images_joins_8_bit_training_images_in_one_unit(tmp_path):
    """train/ of 8-bit PNGs and val/ of 16-bit ones were joined by np.concatenate: uint8 0..255
    beside floats in [0, 1], one training set on two scales, without a word (a review, 2026-12-06)."""
    _image_folder(tmp_path / "ds" / "train", per_class=3)  # RGB, values 0..22
    for cls in ("a", "b"):
        (tmp_path / "ds" / "val" / cls).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "ds" / "val" / cls / "w.png")
    _image_folder(tmp_path / "ds" / "test", per_class=1)
    train = load_dataset(tmp_path / "ds").train
    assert train.images.dtype == np.float32 and len(train) == 8
    assert train.images.max() == pytest.approx(1.0) and train.images[:6].max() == pytest.approx(22 / 255)


def test_a_class_dropped_for_unreadable_files_is_named_when_another_folder_has_it(tmp_path):
    # train/b/ held only unreadable files: the test folder's b/ was refused with advice to give
    # the training data a class folder of that name, which it had (a review, 2026-12-06).
    _image_folder(tmp_path / "ds" / "train", classes=("a", "c"))
    (tmp_path / "ds" / "train" / "b").mkdir()
    (tmp_path / "ds" / "train" / "b" / "x.png").write_bytes(b"not a png")
    _image_folder(tmp_path / "ds" / "test", classes=("a", "b"), per_class=1)
    with pytest.warns(UserWarning, match="could not be read"), pytest.raises(
            DataError, match=r"train/b/ held no readable image, so that class was left out of training"):
        load_dataset(tmp_path / "ds")


def test_test_folder_with_an_unknown_class_is_refused(tmp_path):
    _image_folder(tmp_path / "ds" / "train")
    _image_folder(tmp_path / "ds" / "test", classes=("a", "c"))
    with pytest.raises(DataError, match=r"\['c'\] that are not among the given classes"):
        load_dataset(tmp_path / "ds")


def test_plain_image_folder_and_root_relative_path(tmp_path):
    _image_folder(tmp_path / "flowers")
    splits = load_dataset("flowers", root=tmp_path)
    assert splits.test is None and splits.train.classes == ("a", "b")


def test_npz_with_and_without_test_split(tmp_path):
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8)
    x_te = rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    y_tr, y_te = [7, 3, 7, 3, 7, 3], [7, 7, 3]
    np.savez(tmp_path / "split.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    splits = load_dataset(tmp_path / "split.npz")
    # train and test labels share one mapping (a label only in the test split is refused: below)
    assert splits.train.classes == splits.test.classes == ("3", "7")
    assert splits.train.labels.tolist() == [1, 0, 1, 0, 1, 0]
    assert splits.test.labels.tolist() == [1, 1, 0]
    assert splits.train.shape == (3, 5, 5)
    np.savez(tmp_path / "xy.npz", x=x_tr[..., 0], y=np.array(["cat", "dog"] * 3))
    xy = load_dataset(str(tmp_path / "xy.npz"))
    assert xy.test is None and xy.train.classes == ("cat", "dog") and xy.train.shape == (1, 5, 5)
    np.savez(tmp_path / "named.npz", x=x_tr[..., 0], y=[0, 1] * 3, classes=np.array(["no", "yes"]))
    assert load_dataset(tmp_path / "named.npz").train.classes == ("no", "yes")
    # names saved as bytes (np.array([b"no"])) were named "b'no'", with a test split or without
    np.savez(tmp_path / "bytes.npz", x=x_tr[..., 0], y=[0, 1] * 3, classes=np.array([b"no", b"yes"]))
    assert load_dataset(tmp_path / "bytes.npz").train.classes == ("no", "yes")
    np.savez(tmp_path / "bytes2.npz", x_train=x_tr, y_train=[0, 1] * 3, x_test=x_te, y_test=[1, 0, 1],
             classes=np.array([b"no", b"yes"]))
    assert load_dataset(tmp_path / "bytes2.npz").test.classes == ("no", "yes")


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "keys.npz", images=np.zeros((2, 3, 3)), labels=[0, 1])
    expected = r"arrays \['images', 'labels'\]; expected x_train and y_train"
    with pytest.raises(DataError, match=expected):
        load_dataset(tmp_path / "keys.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([np.zeros(2), np.zeros(3)], dtype=object), y=[0, 1])
    with pytest.raises(DataError, match="holds Python objects .* not loaded for safety"):
        load_dataset(tmp_path / "obj.npz")
    x2, x1 = np.zeros((2, 3, 3)), np.zeros((1, 3, 3))
    np.savez(tmp_path / "half.npz", x_train=x2, y_train=[0, 1], x_test=x1)
    with pytest.raises(DataError, match="only one of x_test and y_test"):
        load_dataset(tmp_path / "half.npz")
    x3 = np.zeros((3, 3, 3))
    np.savez(tmp_path / "mismatch.npz", x_train=x3, y_train=[0, 1], x_test=x1, y_test=[0])
    with pytest.raises(DataError, match="3 images but 2 labels"):
        load_dataset(tmp_path / "mismatch.npz")
    (tmp_path / "text.npz").write_text("not a zip\n")  # not pickled data: not an archive at all
    with pytest.raises(DataError, match="is not a .npz archive"):
        load_dataset(tmp_path / "text.npz")
    np.savez(tmp_path / "newcls.npz", x_train=x3, y_train=[0, 1, 2], x_test=np.zeros((2, 3, 3)), y_test=[2, 3])
    with pytest.raises(DataError, match=r"y_test has label\(s\) \['3'\] that no training image has"):
        load_dataset(tmp_path / "newcls.npz")
    # (review 2026-12-06) uint8 training images beside float test images were read 255x apart,
    # silently: the test accuracy fell from 0.83 to 0.28 on the digits.
    u8 = np.full((4, 3, 3), 200, np.uint8)
    np.savez(tmp_path / "scales.npz", x_train=u8, y_train=[0, 1, 0, 1], x_test=u8[:2].astype(np.float64),
             y_test=[0, 1])
    with pytest.raises(DataError, match="scales.npz's x_train are uint8 but its x_test are float64: integer"):
        load_dataset(tmp_path / "scales.npz")
    np.savez(tmp_path / "same.npz", x_train=u8, y_train=[0, 1, 0, 1], x_test=u8[:2].astype(np.int64), y_test=[0, 1])
    assert load_dataset(tmp_path / "same.npz").test is not None  # (two integer dtypes: the same scale)


def test_unreadable_path_kind(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="cannot tell how to read .*data.csv.*IDX files"):
        load_dataset(tmp_path / "data.csv")


def _tar_with(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _png_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_archive_of_a_wrapped_image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETNAS_CACHE", str(tmp_path / "cache"))
    archive = _tar_with(
        tmp_path / "pets.tgz",
        {
            "pets/cat/0.png": _png_bytes(1),
            "pets/cat/1.png": _png_bytes(2),
            "pets/dog/0.png": _png_bytes(3),
            "__MACOSX/pets/._cat": b"junk",
        },
    )
    splits = load_dataset(archive)
    assert splits.test is None and splits.train.classes == ("cat", "dog") and len(splits.train) == 3
    assert splits.train.shape == (1, 4, 4)


def test_a_zip_of_an_image_folder_is_read_as_its_tar_is(tmp_path, monkeypatch):
    """(review E, 2026-12-07) Most downloads come as .zip: 'cannot tell how to read c10small.zip'."""
    import zipfile

    monkeypatch.setenv("BUDGETNAS_CACHE", str(tmp_path / "cache"))
    members = {"pets/cat/0.png": _png_bytes(1), "pets/cat/1.png": _png_bytes(2), "pets/dog/0.png": _png_bytes(3),
               "__MACOSX/pets/._cat": b"junk"}
    with zipfile.ZipFile(tmp_path / "pets.zip", "w") as z:
        z.writestr("pets/", "")
        for name, data in members.items():
            z.writestr(name, data)
    tarred = load_dataset(_tar_with(tmp_path / "pets.tgz", members)).train
    zipped = load_dataset(tmp_path / "pets.zip").train
    assert zipped.classes == ("cat", "dog") and zipped.fingerprint() == tarred.fingerprint()
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("../escape.png", _png_bytes(1))
    with pytest.raises(DataError, match="absolute path or one with '..'.*may be malicious"):
        load_dataset(tmp_path / "evil.zip")
    (tmp_path / "damaged.zip").write_bytes((tmp_path / "pets.zip").read_bytes()[:-30])
    with pytest.raises(DataError, match="damaged.zip.*the archive is damaged"):
        load_dataset(tmp_path / "damaged.zip")
    assert not (tmp_path / "escape.png").exists()


def test_an_archive_of_a_npz_is_read_and_one_of_neither_is_named_in_the_error(tmp_path, monkeypatch):
    """(review, 2026-12-07) "a .tar.gz of those" was offered for a .npz, which was then read as an
    image folder and refused for want of class folders, the message naming only the cache."""
    monkeypatch.setenv("BUDGETNAS_CACHE", str(tmp_path / "cache"))
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((6, 4, 4), np.uint8), y_train=np.array([0, 1] * 3))
    splits = load_dataset(_tar_with(tmp_path / "data.tar.gz", {"data.npz": buf.getvalue()}))
    assert len(splits.train) == 6 and splits.train.num_classes == 2
    loose = _tar_with(tmp_path / "loose.tar.gz", {"notes.txt": b"no images here", "more.txt": b"x"})
    with pytest.raises(DataError, match=r"\(in .*loose\.tar\.gz, extracted into .*cache"):
        load_dataset(loose)


@pytest.mark.parametrize("bad_name", ["../escape.png", "/tmp/absolute.png", "ok/../../escape.png"])
def test_archive_members_escaping_the_folder_are_refused(tmp_path, monkeypatch, bad_name):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BUDGETNAS_CACHE", str(cache))
    archive = _tar_with(
        tmp_path / "evil.tar.gz",
        {"train/a/0.png": _png_bytes(1), bad_name: _png_bytes(2), "train/b/0.png": _png_bytes(3)},
    )
    with pytest.raises(DataError, match="absolute path or one with '..'.*may be malicious"):
        load_dataset(archive)
    assert not (tmp_path / "escape.png").exists() and not (cache.parent / "escape.png").exists()
    assert not any(cache.iterdir())  # the partial extraction was removed, nothing marked complete


def test_archive_links_are_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETNAS_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, value in (("a/0.png", 1), ("b/0.png", 2)):
            data = _png_bytes(value)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("a/passwd.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
        # (review E, 2026-12-07) Links to images in the archive are images: a tree of linked files,
        # read whole as a folder, lost them all as an archive, unsaid.
        for name, kind, target in (("a/1.png", tarfile.SYMTYPE, "0.png"), ("b/1.png", tarfile.LNKTYPE, "b/0.png"),
                                   ("b/2.png", tarfile.SYMTYPE, "../a/0.png")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    with pytest.warns(UserWarning, match=r"skipped 1 member\(s\) .*'a/passwd.png'"):
        splits = load_dataset(archive)
    assert len(splits.train) == 5 and sorted(splits.train.labels.tolist()) == [0, 0, 1, 1, 1]
    assert not list((tmp_path / "cache").rglob("passwd.png"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_symlink()]  # (copies, never links)
    # (a diff review, 2026-12-07) a loop of links ended the whole extraction in a RecursionError
    # ("unzip it yourself"); a zip's symlink was written as a file holding the target's path
    looped = tmp_path / "loop.tar"
    with tarfile.open(looped, "w") as tf:
        for name, value in (("a/0.png", 1), ("b/0.png", 2)):
            info = tarfile.TarInfo(name)
            info.size = len(data := _png_bytes(value))
            tf.addfile(info, io.BytesIO(data))
        for name, target in (("a/x.png", "y.png"), ("a/y.png", "x.png")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    with pytest.warns(UserWarning, match=r"skipped 2 member\(s\)"):
        assert len(load_dataset(looped).train) == 2
    import stat
    import zipfile

    with zipfile.ZipFile(tmp_path / "links.zip", "w") as z:
        z.writestr("a/0.png", _png_bytes(1))
        z.writestr("b/0.png", _png_bytes(2))
        link = zipfile.ZipInfo("b/1.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "../a/0.png")
    with pytest.warns(UserWarning, match=r"skipped 1 member\(s\) .*'b/1.png'.*a zip's links"):
        assert len(load_dataset(tmp_path / "links.zip").train) == 2


@pytest.mark.parametrize("train_name,test_name", [("Training", "Testing"), ("training_set", "test_set"),
                                                  ("Train", "Test")])
def test_split_folders_in_other_spellings(tmp_path, train_name, test_name):
    """Kaggle-style layouts used to load as two classes named after the splits (review, 2026-12-02)."""
    _image_folder(tmp_path / "ds" / train_name, classes=("glioma", "none"))
    _image_folder(tmp_path / "ds" / test_name, classes=("glioma", "none"), per_class=1)
    splits = load_dataset(tmp_path / "ds")
    assert splits.train.classes == ("glioma", "none") and len(splits.train) == 6 and len(splits.test) == 2


def test_a_class_called_train_is_a_class(tmp_path):
    _image_folder(tmp_path / "vehicles", classes=("bus", "car", "train"))
    splits = load_dataset(tmp_path / "vehicles")
    assert splits.train.classes == ("bus", "car", "train") and splits.test is None


def test_unlabelled_test_folder_is_ignored_with_a_warning(tmp_path):
    _image_folder(tmp_path / "ds" / "train")
    (tmp_path / "ds" / "test").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ds" / "test" / "0.png")
    with pytest.warns(UserWarning, match=r"holds 1 file\(s\) but no class folders.*held out from train/"):
        splits = load_dataset(tmp_path / "ds")
    assert splits.test is None and len(splits.train) == 6


def test_cifar100_folder_says_what_it_is(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test", "meta"):
        (folder / name).write_bytes(b"\x80\x04N.")
    with pytest.raises(DataError, match="looks like CIFAR-100"):
        load_dataset(folder)


def test_damaged_npz_is_one_clear_error(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 1, 0, 1]))
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF  # inside the first array's data: the CRC no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="damaged or incomplete"):
        load_dataset(path)


def test_empty_class_folder_in_train_and_test_is_left_out_of_both(tmp_path):
    """An empty placeholder class in train/ and test/: train dropped it, then the test folder was
    refused for holding a class folder that is not among train's classes (review, 2026-12)."""
    for split in ("train", "test"):
        _image_folder(tmp_path / "ds" / split)
        (tmp_path / "ds" / split / "empty").mkdir()
    with pytest.warns(UserWarning, match=r"\['empty'\].*left out"):
        splits = load_dataset(tmp_path / "ds")
    assert splits.train.classes == splits.test.classes == ("a", "b")
    assert len(splits.test) == 6


def test_class_folders_that_group_subfolders_are_named_in_a_warning(tmp_path):
    """animals/{cat,dog} and vehicles/{car,bus} loaded as two classes without a word (a review,
    2026-12-06); the same subfolders in every class keep their own warning."""
    for group, kinds in (("animals", ("cat", "dog")), ("vehicles", ("car", "bus"))):
        for k in kinds:
            _image_folder(tmp_path / "h" / group, classes=(k,), per_class=2)
    with pytest.warns(UserWarning, match=r"2 class folder\(s\) of .* hold subfolders.*animals/ holds cat, dog"):
        splits = load_dataset(tmp_path / "h")
    assert splits.train.classes == ("animals", "vehicles") and len(splits.train) == 8
    # one group beside plain classes: named too
    _image_folder(tmp_path / "m", classes=("plain",), per_class=2)
    _image_folder(tmp_path / "m" / "group", classes=("p", "q"), per_class=1)
    with pytest.warns(UserWarning, match=r"1 class folder\(s\) .*group/ holds p, q"):
        assert load_dataset(tmp_path / "m").train.classes == ("group", "plain")


def test_npz_and_npy_mistakes_are_named(tmp_path):
    """A .npy got "cannot tell how to read"; a classes array naming unused classes and an x_test of
    another size loaded without a word (a review, 2026-12-06)."""
    x = np.zeros((8, 16, 16), np.uint8)
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match=r"is a \.npy file: it holds one array.*np\.savez\('data\.npz'"):
        load_dataset(tmp_path / "x.npy")
    y = np.array([0, 1] * 4)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=np.zeros((4, 32, 32), np.uint8), y_test=y[:4],
             classes=np.array(["a", "b", "c"]))
    with pytest.warns(UserWarning) as got:
        load_dataset(tmp_path / "d.npz")
    text = " ".join(str(w.message) for w in got)
    assert "names 1 class(es) no training image has (['c'])" in text
    assert "x_test's images are 32x32 px, x_train's 16x16" in text


def test_a_folder_error_says_what_a_command_line_user_can_do(tmp_path):
    _image_folder(tmp_path / "ds" / "train", classes=("a", "b"))
    _image_folder(tmp_path / "ds" / "test", classes=("A", "b"))
    with pytest.raises(DataError, match=r"in case only: rename them to match.*give the training data a class folder"):
        load_dataset(tmp_path / "ds")


def test_images_over_pillows_size_guard_are_named_as_such(tmp_path, monkeypatch):
    """A 200-megapixel photo was skipped as unreadable, "delete or replace them" (a review, 2026-12-06)."""
    import PIL.Image

    _image_folder(tmp_path / "ds", per_class=3, size=4)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "ds" / "a" / "huge.png")
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 200)  # (40x40 is over twice it: Pillow refuses)
    with pytest.warns(UserWarning, match=r"1 of them \(e\.g\. .*huge\.png\) are larger than Pillow reads by default"):
        splits = load_dataset(tmp_path / "ds")
    assert len(splits.train) == 6


def test_the_val_folder_note_is_for_the_runs_own_data_folder(tmp_path):
    """A resume refused for other data added "Since 2026-12-06 a labelled val/ folder ... is read"
    whenever the new --data had a val/ folder, also for a run made on other data altogether
    (a docs review, 2026-12-06): the note is for the run's own folder, which may read otherwise now."""
    from budgetnas.errors import ResumeError
    from budgetnas.search import Search, SearchConfig

    _image_folder(tmp_path / "ds" / "train", per_class=12)
    _image_folder(tmp_path / "other" / "train", per_class=12, size=12)
    _image_folder(tmp_path / "other" / "val", per_class=4, size=12)
    tiny = dict(C=4, N=1, epochs=1, max_trials=1, final_training=False, strategy="random", data_root=str(tmp_path))

    def search(data: str) -> None:
        Search(SearchConfig(data=data, run_dir=str(tmp_path / "run"), **tiny), progress=False).run()

    search("ds")
    _image_folder(tmp_path / "ds" / "val", per_class=4)   # the same folder, now with a val/ beside train/
    with pytest.raises(ResumeError, match=r"different test set .*Since 2026-12-06 a labelled val/ folder"):
        search("ds")
    with pytest.raises(ResumeError, match=r"searched on different data: 'ds' there \(from .*ds\), 'other' now") as err:
        search("other")
    assert "val/" not in str(err.value)


def test_the_val_folder_note_names_only_a_val_folder_the_loader_reads(tmp_path):
    # An empty valid/ (no class folders) is not read; the note blamed it for a change made elsewhere.
    from budgetnas.errors import ResumeError
    from budgetnas.search import Search, SearchConfig

    _image_folder(tmp_path / "ds" / "train", per_class=12)
    _image_folder(tmp_path / "ds" / "test", per_class=2)
    cfg = SearchConfig(data="ds", run_dir=str(tmp_path / "run"), C=4, N=1, epochs=1, max_trials=1,
                       final_training=False, strategy="random", data_root=str(tmp_path))
    Search(cfg, progress=False).run()
    _image_folder(tmp_path / "ds" / "train", classes=("a",), per_class=14)  # new training images
    (tmp_path / "ds" / "valid").mkdir()
    with pytest.raises(ResumeError, match="different") as err:
        Search(cfg, progress=False).run()
    assert "val/" not in str(err.value), err.value


def test_a_npz_whose_named_classes_have_no_images_is_warned_of_and_one_class_refused(tmp_path):
    """(review, 2026-12-07) A .npz without a test split, naming two classes with images of one,
    loaded without a word and was searched: validation accuracy 1.0, test accuracy 0, model saved."""
    from budgetnas.search import SearchConfig
    from budgetnas.search.prepare import prepare

    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "three.npz", x=x, y=np.array([0, 1] * 20), classes=np.array(["cat", "dog", "bird"]))
    with pytest.warns(UserWarning, match=r"names 1 class\(es\) no training image has \(\['bird'\]\)"):
        load_dataset(tmp_path / "three.npz")
    np.savez(tmp_path / "one.npz", x=x, y=np.zeros(40, np.int64), classes=np.array(["cat", "dog"]))
    with pytest.warns(UserWarning, match="no training image has"):
        splits = load_dataset(tmp_path / "one.npz")
    cfg = SearchConfig(data="one", run_dir=str(tmp_path / "run"), max_trials=1, epochs=1)
    with pytest.raises(DataError, match=r"every training image is of class 'cat': the other 1 class\(es\) named \('dog'\)"):
        prepare(splits, cfg, data_name="one")
