"""CIFAR-10: the python archive (restricted unpickler) and the shared JPEG image-folder tarball."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from budgetnas.data import CIFAR10_CLASSES, load_cifar10_archive, load_dataset
from budgetnas.errors import DataError

SHARED_TARBALL = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpeg.tar.gz"
_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
_NAMES = [b"plane", b"car", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _batch(seed: int, n: int = 4) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": f"batch {seed}".encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }


def _cifar_members(meta: bool = True) -> dict[str, bytes]:
    """The archive's files as the original: dicts with bytes keys pickled with protocol 2."""
    members = {name: pickle.dumps(_batch(i), protocol=2) for i, name in enumerate(_BATCHES)}
    if meta:
        members["batches.meta"] = pickle.dumps(
            {b"num_cases_per_batch": 4, b"label_names": _NAMES, b"num_vis": 3072}, protocol=2
        )
    return members


def _write_tar(path: Path, members: dict[str, bytes], prefix: str = "cifar-10-batches-py/") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_python_archive_in_memory(tmp_path):
    archive = _write_tar(tmp_path / "cifar-10-python.tar.gz", _cifar_members())
    splits = load_cifar10_archive(archive)
    assert len(splits.train) == 20 and len(splits.test) == 4
    assert splits.train.shape == (3, 32, 32) and splits.train.images.dtype == np.uint8
    assert splits.train.classes == tuple(n.decode() for n in _NAMES)
    first = _batch(0)
    np.testing.assert_array_equal(splits.train.images[0, 0].reshape(-1), first[b"data"][0, :1024])
    np.testing.assert_array_equal(splits.train.images[0, 2].reshape(-1), first[b"data"][0, 2048:])
    assert splits.train.labels[:4].tolist() == first[b"labels"]
    assert splits.test.labels.tolist() == _batch(5)[b"labels"]
    assert not list(tmp_path.glob("cifar-10-batches-py"))  # nothing extracted to disk


def test_python_batches_folder_and_default_class_names(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in _cifar_members(meta=False).items():
        (folder / name).write_bytes(data)
    for path in (folder, tmp_path):  # the batches folder or its parent
        splits = load_cifar10_archive(path)
        assert splits.train.classes == CIFAR10_CLASSES and len(splits.train) == 20
    assert len(load_dataset("cifar10", root=folder).test) == 4
    assert len(load_dataset(str(folder)).train) == 20


def test_python_archive_missing_batches(tmp_path):
    members = _cifar_members()
    del members["data_batch_3"]
    archive = _write_tar(tmp_path / "partial.tar.gz", members)
    with pytest.raises(DataError, match="has no data_batch_3; a CIFAR-10 python archive holds"):
        load_cifar10_archive(archive)
    with pytest.raises(DataError, match="no such file or folder"):
        load_cifar10_archive(tmp_path / "nope.tar.gz")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="cannot read .* as a tar archive"):
        load_cifar10_archive(tmp_path / "junk.tar.gz")


def test_damaged_batch_content(tmp_path):
    members = _cifar_members()
    bad = _batch(0)
    bad[b"data"] = bad[b"data"][:, :100]
    members["data_batch_1"] = pickle.dumps(bad, protocol=2)
    with pytest.raises(DataError, match="expected 4 rows of 3072 uint8 pixels"):
        load_cifar10_archive(_write_tar(tmp_path / "a.tar.gz", members))
    members["data_batch_1"] = b"\x80\x02garbage"
    with pytest.raises(DataError, match="not a readable CIFAR-10 batch"):
        load_cifar10_archive(_write_tar(tmp_path / "b.tar.gz", members))


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _EvilEval:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


@pytest.mark.parametrize("kind", ["system", "eval"])
def test_malicious_pickle_is_refused_without_running(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "system":
        payload = _Evil(f"touch {marker}")
        refused = r"(posix|nt)\.system"
    else:
        payload = _EvilEval(f"open({str(marker)!r}, 'w').close()")
        refused = r"(__builtin__|builtins)\.eval"
    members = _cifar_members()
    batch = _batch(0)
    batch[b"data"] = payload
    members["data_batch_1"] = pickle.dumps(batch, protocol=2)
    archive = _write_tar(tmp_path / "evil.tar.gz", members)
    expected = (
        rf"refuses to load global {refused}: CIFAR archives contain only arrays; "
        "this file may be malicious"
    )
    with pytest.raises(DataError, match=expected):
        load_cifar10_archive(archive)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in members.items():
        (folder / name).write_bytes(data)
    with pytest.raises(DataError, match="may be malicious"):
        load_dataset("cifar10", root=folder)
    assert not marker.exists()


def test_cifar10_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv("BUDGETNAS_DATA", raising=False)
    with pytest.raises(DataError, match="CIFAR-10 not found; looked in: nowhere.*BUDGETNAS_DATA"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match=rf"looked in: {tmp_path}.*train/ and test/ image folders"):
        load_dataset("CIFAR-10", root=tmp_path)


# ----------------------------------------------------------------------------- shared JPEG tarball


@pytest.fixture(scope="module")
def jpeg_subset(tmp_path_factory) -> Path:
    """The first 4 images of each class and split of the shared tarball, as train/ and test/."""
    if not SHARED_TARBALL.is_file():
        pytest.skip(f"{SHARED_TARBALL} is absent")
    out = tmp_path_factory.mktemp("cifar10-subset")
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(SHARED_TARBALL, "r:gz") as tf:
        for member in tf:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in ("train", "test"):
                continue
            key = (parts[0], parts[1])
            if taken.get(key, 0) >= 4:
                if len(taken) == 20 and all(v >= 4 for v in taken.values()):
                    break
                continue
            taken[key] = taken.get(key, 0) + 1
            dest = out.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tf.extractfile(member).read())
    return out


def test_cifar10_from_jpeg_folders(jpeg_subset):
    splits = load_dataset("cifar10", root=jpeg_subset)
    assert len(splits.train) == 40 and len(splits.test) == 40
    assert splits.train.shape == (3, 32, 32) and splits.test.shape == (3, 32, 32)
    assert splits.train.classes == CIFAR10_CLASSES == splits.test.classes
    assert np.bincount(splits.train.labels).tolist() == [4] * 10
    assert splits.train.name == "cifar10" and splits.test.name == "cifar10-test"
    assert splits.train.images.std() > 20  # real photos, not blank decodes


def test_cifar10_jpeg_archive_is_extracted_once_into_the_cache(jpeg_subset, tmp_path, monkeypatch):
    archive = tmp_path / "cifar10-small.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(jpeg_subset / "train", arcname="train")
        tf.add(jpeg_subset / "test", arcname="test")
    cache = tmp_path / "cache"
    monkeypatch.setenv("BUDGETNAS_CACHE", str(cache))
    splits = load_dataset("cifar10", root=archive)
    assert len(splits.train) == 40 and len(splits.test) == 40
    (extracted,) = list(cache.iterdir())
    prefix = "cifar10-small-"
    assert extracted.name.startswith(prefix) and len(extracted.name) == len(prefix) + 8
    assert (extracted / ".budgetnas-complete").is_file()
    sentinel = extracted / "train" / "sentinel.txt"
    sentinel.write_text("still here")
    again = load_dataset(str(archive))  # a path works too, and reuses the extraction
    assert sentinel.exists()
    assert again.train.fingerprint() == splits.train.fingerprint()
    # The env var route: BUDGETNAS_DATA/cifar10 holding the archive
    monkeypatch.setenv("BUDGETNAS_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    os.link(archive, tmp_path / "data" / "cifar10" / archive.name)
    assert len(load_dataset("cifar10").test) == 40


def test_protocol_5_batches_load_and_stay_restricted(tmp_path):
    """Python 3.14 pickles with protocol 5 by default, where numpy stores arrays through
    _frombuffer; such batches were refused as malicious (review, 2026-12)."""
    members = {name: pickle.dumps(_batch(i), protocol=5) for i, name in enumerate(_BATCHES)}
    fortran = {b"data": np.asfortranarray(_batch(9)[b"data"]), b"labels": _batch(9)[b"labels"]}
    members["test_batch"] = pickle.dumps(fortran, protocol=5)
    splits = load_cifar10_archive(_write_tar(tmp_path / "p5.tar.gz", members))
    assert len(splits.train) == 20 and len(splits.test) == 4
    np.testing.assert_array_equal(splits.test.images.reshape(4, -1), _batch(9)[b"data"])
    evil = dict(members)
    batch = _batch(0)
    batch[b"data"] = _Evil(f"touch {tmp_path / 'pwned'}")
    evil["data_batch_1"] = pickle.dumps(batch, protocol=5)
    with pytest.raises(DataError, match="may be malicious"):
        load_cifar10_archive(_write_tar(tmp_path / "evil5.tar.gz", evil))
    assert not (tmp_path / "pwned").exists()


def test_cifar100_archive_given_for_cifar10_says_what_it_is(tmp_path, monkeypatch):
    """cifar-100-python.tar.gz as --data-root for cifar10 was extracted into the cache and then
    reported as 'CIFAR-10 not found' (review, 2026-12)."""
    monkeypatch.setenv("BUDGETNAS_CACHE", str(tmp_path / "cache"))
    data = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, protocol=2)
    archive = _write_tar(tmp_path / "cifar-100-python.tar.gz",
                         {"train": data, "test": data, "meta": pickle.dumps({}, protocol=2)},
                         prefix="cifar-100-python/")
    for call in (lambda: load_dataset("cifar10", root=archive), lambda: load_dataset(archive),
                 lambda: load_dataset("cifar10", root=tmp_path)):
        with pytest.raises(DataError, match="looks like CIFAR-100"):
            call()
    with pytest.raises(DataError, match="no CIFAR-10 batches.*looks like CIFAR-100"):
        load_cifar10_archive(archive)
    assert not (tmp_path / "cache").exists()
