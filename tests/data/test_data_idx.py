"""IDX reading, Fashion-MNIST / MNIST lookup and the checked downloader."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

import budgetnas.data._datasets as datasets_mod
from budgetnas.data import (
    FASHION_MNIST_CLASSES,
    download_fashion_mnist,
    load_dataset,
    load_idx_pair,
    read_idx,
)
from budgetnas.data._download import _download_files
from budgetnas.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
HAVE_FASHION = (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file()

_CODES = {
    np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B,
    np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E,
}  # fmt: skip


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    """Write ``array`` in the IDX format (big-endian), optionally gzipped."""
    code = _CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(5, 3, 4)) * 50).astype(dtype)
    back = read_idx(write_idx(tmp_path / "x.idx", arr, gz=gz))
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)
    assert back.flags.writeable


def test_gzip_is_detected_by_content_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain-name", arr, gz=True)), arr)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "fake.gz", arr, gz=False)), arr)


def test_truncated_idx_names_the_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    expected = r"train-images-idx3-ubyte is truncated: .*needs 160 bytes of data"
    expected += " but the file has 153"
    with pytest.raises(DataError, match=expected + "; download it again"):
        read_idx(path)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DataError, match="truncated: its header needs 16 bytes"):
        read_idx(path)


def test_idx_header_errors(tmp_path):
    good = write_idx(tmp_path / "g", np.zeros((2, 2), np.uint8)).read_bytes()
    bad_magic = tmp_path / "bad_magic"
    bad_magic.write_bytes(b"\x01" + good[1:])
    with pytest.raises(DataError, match="is not an IDX file.*starts with 01000802"):
        read_idx(bad_magic)
    bad_code = tmp_path / "bad_code"
    bad_code.write_bytes(good[:2] + b"\x0a" + good[3:])
    with pytest.raises(DataError, match="type code 0x0A, which is not one of"):
        read_idx(bad_code)
    extra = tmp_path / "extra"
    extra.write_bytes(good + b"\x00\x00")
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(extra)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(DataError, match="damaged or truncated gzip"):
        read_idx(broken_gz)
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "missing")


def _idx_folder(folder: Path, n_train: int = 12, n_test: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, gz=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, gz=True)
    return folder


def test_load_idx_pair_and_its_errors(tmp_path):
    folder = _idx_folder(tmp_path / "myset")
    d = load_idx_pair(folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")
    assert d.shape == (1, 28, 28) and len(d) == 12 and d.name == "myset"
    assert d.classes == tuple(str(i) for i in range(10))
    with pytest.raises(DataError, match="has 12 images but .* has 6 labels"):
        load_idx_pair(folder / "train-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="Did you swap the images and labels files"):
        load_idx_pair(folder / "train-labels-idx1-ubyte.gz", folder / "train-images-idx3-ubyte.gz")


def test_mnist_found_in_root_and_in_env(tmp_path, monkeypatch):
    folder = _idx_folder(tmp_path / "data" / "mnist")
    monkeypatch.delenv("BUDGETNAS_DATA", raising=False)
    splits = load_dataset("MNIST", root=folder)
    assert len(splits.train) == 12 and len(splits.test) == 6
    assert splits.train.classes == tuple(str(i) for i in range(10))
    assert len(load_dataset("mnist", root=tmp_path / "data").train) == 12  # root/mnist
    monkeypatch.setenv("BUDGETNAS_DATA", str(tmp_path / "data"))
    assert len(load_dataset("mnist").test) == 6


def test_missing_fashion_mnist_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets_mod._SYSTEM_DIRS, "fashion-mnist", (tmp_path / "system",))
    monkeypatch.setenv("BUDGETNAS_DATA", str(tmp_path / "env"))
    partial = tmp_path / "partial"
    _idx_folder(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist")
    msg = str(info.value)
    assert str(tmp_path / "env" / "fashion-mnist") in msg and "(no such folder)" in msg
    assert str(tmp_path / "system") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "download_fashion_mnist(dest)" in msg
    with pytest.raises(DataError) as info:  # a root given: the only place looked
        load_dataset("fashion-mnist", root=partial)
    msg = str(info.value)
    assert "missing t10k-labels-idx1-ubyte[.gz]" in msg and "download_fashion_mnist(dest)" in msg
    assert str(tmp_path / "env") not in msg and str(tmp_path / "system") not in msg


def test_a_data_root_without_the_dataset_is_said_not_passed_over_for_an_installed_copy(tmp_path, monkeypatch):
    """(review A, 2026-12-07) --data-root naming a folder without Fashion-MNIST (a typo, another
    dataset's folder) trained on the installed copy unsaid, and the run recorded the root it did not read."""
    installed = _idx_folder(tmp_path / "system")
    monkeypatch.setitem(datasets_mod._SYSTEM_DIRS, "fashion-mnist", (installed,))
    monkeypatch.delenv("BUDGETNAS_DATA", raising=False)
    assert len(load_dataset("fashion-mnist").train) == 12  # (no root: the installed copy)
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DataError, match=rf"fashion-mnist not found in the root given; looked in: "
                                        rf"{tmp_path / 'pictures'} \(missing train-images.*A copy is at {installed}: leave "
                                        r"the root out"):
        load_dataset("fashion-mnist", root=tmp_path / "pictures")
    monkeypatch.setenv("BUDGETNAS_DATA", str(tmp_path / "env"))  # (CIFAR-10 alike: the root, not the env)
    (tmp_path / "env" / "cifar10").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"CIFAR-10 not found; looked in: {tmp_path / 'pictures'}; "
                                        rf"{tmp_path / 'pictures' / 'cifar10'} \(does not exist\)\. Pass root"):
        load_dataset("cifar10", root=tmp_path / "pictures")


@pytest.mark.skipif(not HAVE_FASHION, reason="Fashion-MNIST IDX files are not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("BUDGETNAS_DATA", raising=False)
    splits = load_dataset("Fashion-MNIST")
    assert len(splits.train) == 60000 and len(splits.test) == 10000
    assert splits.train.shape == (1, 28, 28) and splits.train.images.dtype == np.uint8
    assert splits.train.classes == FASHION_MNIST_CLASSES and splits.train.num_classes == 10
    assert np.bincount(splits.train.labels).tolist() == [6000] * 10
    assert np.bincount(splits.test.labels).tolist() == [1000] * 10
    # (review E, 2026-12-07) Its files in a folder named otherwise (a Kaggle download's archive/)
    # were read as MNIST's digits '0'..'9', unflipped; they are known by their labels' bytes.
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(FASHION_DIR, Path(tmp) / "archive")
        other = load_dataset(Path(tmp) / "archive")
    assert other.train.classes == FASHION_MNIST_CLASSES and other.train.name == "fashion-mnist"
    assert other.train.fingerprint() == splits.train.fingerprint()


# ----------------------------------------------------------------------------- downloads


def _fake_files(folder: Path) -> dict[str, tuple[int, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    spec = {}
    for i, name in enumerate(["a.gz", "b.bin"]):
        content = bytes(range(i, i + 100)) * 3
        (folder / name).write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
        spec[name] = (len(content), hashlib.sha256(content).hexdigest())
    return spec


def test_download_checks_and_keeps_files(tmp_path):
    src = tmp_path / "mirror"
    spec = _fake_files(src)
    dest = tmp_path / "dest"
    assert _download_files(dest, src.as_uri(), spec, what="") == dest
    for name in spec:
        assert (dest / name).read_bytes() == (src / name).read_bytes()
    assert not list(dest.glob("*.part"))
    (src / "a.gz").unlink()  # intact files are not fetched again
    assert _download_files(dest, src.as_uri() + "/", spec, what="") == dest


def test_download_refuses_a_mismatching_file(tmp_path):
    src = tmp_path / "mirror"
    spec = _fake_files(src)
    (src / "b.bin").write_bytes(b"something else entirely")
    dest = tmp_path / "dest"
    expected = r"b.bin is not the expected file: got 23 bytes.*expected 300"
    with pytest.raises(DataError, match=expected):
        _download_files(dest, src.as_uri(), spec, what="")
    assert not (dest / "b.bin").exists() and not (dest / "b.bin.part").exists()


def test_download_fashion_mnist_reports_404_and_bad_content(tmp_path):
    expected = r"could not download .*train-images-idx3-ubyte.gz.*base_url=.*apt"
    with pytest.raises(DataError, match=expected):
        download_fashion_mnist(tmp_path / "dest", base_url=(tmp_path / "nowhere").as_uri())
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in datasets_mod._IDX_FILES.values():
        (mirror / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x00"))
    with pytest.raises(DataError, match="not the expected file: got 8 bytes.*expected 47040016"):
        download_fashion_mnist(tmp_path / "dest", base_url=mirror.as_uri())


@pytest.mark.skipif(not HAVE_FASHION, reason="Fashion-MNIST IDX files are not installed")
def test_download_fashion_mnist_from_a_local_mirror(tmp_path, monkeypatch):
    dest = download_fashion_mnist(tmp_path / "fm", base_url=FASHION_DIR.as_uri())
    expected = sorted(f"{n}.gz" for n in datasets_mod._IDX_FILES.values())
    assert sorted(p.name for p in dest.iterdir()) == expected
    monkeypatch.setitem(datasets_mod._SYSTEM_DIRS, "fashion-mnist", ())
    monkeypatch.delenv("BUDGETNAS_DATA", raising=False)
    assert len(load_dataset("fashion-mnist", root=dest).test) == 10000


def test_download_reports_http_404_from_a_local_server(tmp_path):
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "empty"), **kwargs)

        def log_message(self, *args):
            pass

    (tmp_path / "empty").mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(DataError, match=r"could not download .* \(HTTP 404 .*\)\. Check"):
            download_fashion_mnist(tmp_path / "dest", base_url=url)
    finally:
        server.shutdown()
        server.server_close()
    assert not list((tmp_path / "dest").iterdir())


def test_a_folder_of_idx_files_loads_as_a_path(tmp_path):
    """`--data /usr/share/datasets/fashion-mnist` used to fail asking for class folders."""
    folder = _idx_folder(tmp_path / "fashion-copy")
    splits = load_dataset(folder)
    assert len(splits.train) == 12 and len(splits.test) == 6 and splits.train.classes[0] == "T-shirt/top"
    assert load_dataset(_idx_folder(tmp_path / "digits-idx")).train.classes[0] == "0"
    raw = load_dataset(_idx_folder(tmp_path / "FashionMNIST" / "raw"))  # (torchvision's layout)
    assert raw.train.name == "fashion-mnist" and raw.train.classes[0] == "T-shirt/top"
    one = next(folder.glob("train-images*"))
    with pytest.raises(DataError, match=r"is one IDX file; give the folder that holds all four.*--data "):
        load_dataset(one)
    next(folder.glob("t10k-labels*")).unlink()
    with pytest.raises(DataError, match=r"holds IDX files but not t10k-labels-idx1-ubyte"):
        load_dataset(folder)


def test_idx_files_of_three_classes_get_three_classes_whatever_the_folders_above(tmp_path):
    """Labels 0..2 were read as MNIST's ten digits (7 empty classes, a 10-way model, test accuracy
    0), and "fashion" anywhere in the path named them garments (a review, 2026-12-06)."""
    folder = tmp_path / "fashion_project" / "my_parts"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 9)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 12, 12), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 3).astype(np.uint8))
    splits = load_dataset(folder)
    assert splits.train.classes == ("0", "1", "2") == splits.test.classes
    assert splits.train.name == "my_parts" and np.bincount(splits.test.labels).tolist() == [3, 3, 3]
    write_idx(folder / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 0, 1, 2, 0, 1, 5], np.uint8))
    with pytest.raises(DataError, match=r"class\(es\) \['5'\] that no training image has"):
        load_dataset(folder)  # (the check used to be skipped for labels under 10)
    # Training labels 0..8 and test labels 0..9 happen to encode as MNIST's ten names, which
    # exempted them from the check: class 9 was an output never trained (a review, 2026-12-06).
    write_idx(folder / "train-labels-idx1-ubyte", (np.arange(30) % 9).astype(np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", (np.arange(9) % 10 + 1).astype(np.uint8))
    with pytest.raises(DataError, match=r"class\(es\) \['9'\] that no training image has"):
        load_dataset(folder)


def test_a_folder_of_idx_files_with_more_than_ten_classes(tmp_path):
    """EMNIST-style IDX files (letters labelled 1..26) were refused: the folder was always given
    MNIST's ten class names (review, 2026-12). Labels are now encoded over train and test together."""
    folder = tmp_path / "emnist-letters"
    folder.mkdir()
    rng = np.random.default_rng(0)
    y_train = np.arange(52, dtype=np.uint8) % 26 + 1
    y_test = np.array([26, 1, 13], np.uint8)
    for prefix, labels in (("train", y_train), ("t10k", y_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8), gz=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, gz=True)
    splits = load_dataset(folder)
    assert splits.train.classes == tuple(str(i) for i in range(1, 27)) == splits.test.classes
    assert [splits.test.classes[i] for i in splits.test.labels] == ["26", "1", "13"]
    assert [splits.train.classes[i] for i in splits.train.labels[:3]] == ["1", "2", "3"]
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([26, 1, 40], np.uint8), gz=True)
    with pytest.raises(DataError, match=r"class\(es\) \['40'\] that no training image has"):
        load_dataset(folder)


def test_idx_files_spelled_as_kaggle_does(tmp_path):
    """Kaggle's MNIST copies name the files train-images.idx3-ubyte; the folder was read as an image
    folder and failed asking for class subfolders (review, 2026-12)."""
    folder = tmp_path / "mnist-kaggle"
    folder.mkdir()
    for prefix, n in (("train", 12), ("t10k", 6)):
        write_idx(folder / f"{prefix}-images.idx3-ubyte", np.zeros((n, 28, 28), np.uint8))
        write_idx(folder / f"{prefix}-labels.idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    splits = load_dataset(folder)
    assert len(splits.train) == 12 and len(splits.test) == 6 and splits.train.classes[0] == "0"
    assert len(load_dataset("mnist", root=folder).train) == 12
