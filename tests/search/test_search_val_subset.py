"""--subset shrinks the validation images a search scores each epoch, never below VAL_FLOOR, and
runs begun when it did not keep scoring their whole split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from budgetnas.data import DataSplits, from_arrays
from budgetnas.search import Search, SearchConfig
import budgetnas.search.prepare as prepare_mod
from budgetnas.search.prepare import VAL_FLOOR, prepare, search_val_count


def _corners(n: int) -> DataSplits:
    """``n`` learnable 4x4 images of 3 unequal classes (a bright pixel's place names the class)."""
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    x = rng.integers(0, 60, size=(n, 4, 4)).astype(np.uint8)
    for c in range(3):
        x[y == c, c, c] = 250
    return DataSplits(train=from_arrays(x, y, name="corners"), test=None)


@pytest.fixture(scope="module")
def big() -> DataSplits:
    return _corners(24_000)


def _cfg(tmp_path: Path, **kw) -> SearchConfig:
    return SearchConfig(data="corners", run_dir=str(tmp_path / "run"), C=4, N=1, final_C=4, final_N=1,
                        epochs=1, final_epochs=1, strategy="random", val_fraction=0.5, test_fraction=0.1,
                        **{"max_trials": 1, **kw})


def test_the_subset_scores_a_stratified_share_of_validation_but_at_least_the_floor(big, tmp_path) -> None:
    whole = prepare(big, _cfg(tmp_path), data_name="corners")
    n_val = len(whole.val)
    assert len(whole.val_y) == n_val > 2 * VAL_FLOOR and "search_val_images" not in whole.fingerprint_fields

    p = prepare(big, _cfg(tmp_path, subset=0.1), data_name="corners")
    assert len(p.val) == n_val                          # the split itself is whole: the final trains on it
    assert len(p.val_y) == len(p.val_x) == p.fingerprint_fields["search_val_images"]
    assert abs(len(p.val_y) - VAL_FLOOR) <= 3            # (rounded per class)
    assert len(p.final_train()[1]) == len(p.train) + n_val
    share = Counter(p.val_y.tolist())
    full = Counter(p.val.labels.tolist())
    for c in full:                                      # stratified: each class in its proportion
        assert abs(share[c] / len(p.val_y) - full[c] / n_val) < 0.005

    half = prepare(big, _cfg(tmp_path, subset=0.8), data_name="corners")
    assert abs(len(half.val_y) - 0.8 * n_val) <= 3
    assert search_val_count(n_val, 1.0) == n_val and search_val_count(300, 0.01) == 300
    old = prepare(big, _cfg(tmp_path, subset=0.1), data_name="corners", shrink_val=False)
    assert len(old.val_y) == n_val and "search_val_images" not in old.fingerprint_fields
    assert old.fingerprint != p.fingerprint


def test_a_run_begun_scoring_its_whole_validation_split_resumes_doing_so(tmp_path, monkeypatch) -> None:
    """A run made before the validation subset (simulated by scoring the whole split) resumes
    with the same scoring, not refused as other settings and not scored two ways."""
    monkeypatch.setattr(prepare_mod, "VAL_FLOOR", 100)   # (small data, quick trials: the rule is the same)
    big = _corners(1_000)
    cfg = _cfg(tmp_path, subset=0.1)
    with monkeypatch.context() as m:
        m.setattr(Search, "_run_shrinks_val", lambda self, attrs: False)
        first = Search(cfg, data=big, data_name="corners", progress=False)
        result = first.run()
    assert len(first.prepared.val_y) == len(first.prepared.val) and result.spent.trials == 1

    again = Search(_cfg(tmp_path, subset=0.1, max_trials=2),
                   data=big, data_name="corners", progress=False)
    result = again.run()
    assert len(again.prepared.val_y) == len(again.prepared.val)   # still the whole split
    assert result.spent.trials == 2

    fresh = Search(_cfg(tmp_path / "new", subset=0.1), data=big, data_name="corners", progress=False)
    fresh.run()
    assert abs(len(fresh.prepared.val_y) - 100) <= 3


def test_a_split_that_leaves_each_class_one_image_says_so() -> None:
    # (a review, 2026-12-06: it advised a smaller validation fraction, which cannot help)
    from budgetnas.errors import DataError

    x = np.zeros((3, 4, 4), np.uint8)
    with pytest.raises(DataError, match=r"every class has a single image once 1 test image\(s\) are held out "
                                        r"\(2 in all\)"):
        prepare(DataSplits(from_arrays(x, [0, 0, 1]), None), SearchConfig(data="x"), data_name="x", device_type="cpu")


def test_a_class_too_small_for_validation_or_test_is_named(tmp_path) -> None:
    """A class of one image went to training alone, silently: the search never scored it and the
    test never measured it (a user review, 2026-12-06)."""
    import warnings

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(62, 4, 4)).astype(np.uint8)
    y = np.array([0] * 30 + [1] * 30 + [2] * 2)
    splits = DataSplits(train=from_arrays(x, y, classes=("cat", "dog", "frog"), name="few"), test=None)
    with pytest.warns(UserWarning) as caught:
        prepare(splits, _cfg(tmp_path), data_name="few")
    said = [str(w.message) for w in caught]
    # (the test split takes one of its two images, and validation none of the one left)
    assert any(m.startswith("1 class(es) have no validation image: 'frog' (1 training image); the search cannot "
                            "score the model on them") for m in said), said
    assert not any("test image" in m for m in said), said
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every class in every split: nothing to say
        prepare(_corners(300), _cfg(tmp_path), data_name="corners")


def test_non_square_images_are_said_to_be_stretched_to_squares(tmp_path) -> None:
    rng = np.random.default_rng(0)
    wide = DataSplits(train=from_arrays(rng.integers(0, 255, size=(60, 9, 16)).astype(np.uint8),
                                        np.arange(60) % 3, name="wide"), test=None)
    with pytest.warns(UserWarning, match=r"the images are 9x16 \(height x width\) and are resized to 16x16 squares"):
        prepare(wide, _cfg(tmp_path), data_name="wide")


def _numbered(n: int, channels: int = 3) -> DataSplits:
    """``n`` distinct 4x4 images of 3 classes (each carries its number in two pixels), whose
    brightness differs from image to image, so that any share of them has statistics of its own."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=n)
    x = (rng.integers(0, 40, size=(n, 4, 4, channels)) + rng.integers(0, 200, size=(n, 1, 1, channels)))
    x = x.astype(np.uint8)
    x[:, 0, 0, 0], x[:, 0, 1, 0] = np.arange(n) % 256, np.arange(n) // 256
    return DataSplits(train=from_arrays(x, y, name="numbered"), test=None)


def _keys(images: np.ndarray) -> set[bytes]:
    return {im.tobytes() for im in images}


def test_normalisation_statistics_come_from_the_training_split_only(tmp_path) -> None:
    """The mean and std the networks are normalised with are the training split's: measured on the
    images the validation and test splits hold too, they would leak what is scored into training.
    (Measured on all the images, every test passed.)"""
    from budgetnas.data import channel_stats

    data = _numbered(600)
    p = prepare(data, _cfg(tmp_path), data_name="numbered")  # (val 0.5, test 0.1)
    mean, std = channel_stats(p.train.images)
    np.testing.assert_array_equal(p.mean, mean)
    np.testing.assert_array_equal(p.std, std)
    everything = channel_stats(data.train.images)  # (the statistics told apart on this data)
    assert np.abs(everything[0] - mean).max() > 1e-3 and np.abs(everything[1] - std).max() > 1e-3
    # (and the search's training tensors are normalised with them: mean 0, std 1 per channel)
    sx = p.search_train_x.double()
    np.testing.assert_allclose(sx.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(sx.std(dim=(0, 2, 3), correction=0).numpy(), 1, atol=1e-5)


def test_the_train_validation_and_test_splits_are_disjoint_and_cover_the_data(tmp_path) -> None:
    """No image is in two of the splits (one in training and test would inflate the test score),
    and together they hold every image once."""
    data = _numbered(600)
    p = prepare(data, _cfg(tmp_path), data_name="numbered")  # (val 0.5, test 0.1)
    train, val, test = _keys(p.train.images), _keys(p.val.images), _keys(p.test.images)
    assert len(train) == len(p.train) and len(val) == len(p.val) and len(test) == len(p.test)
    assert not train & val and not train & test and not val & test
    assert train | val | test == _keys(data.train.images)
    assert len(test) == pytest.approx(60, abs=3) and len(val) == pytest.approx(0.5 * 540, abs=3)  # (as asked)
