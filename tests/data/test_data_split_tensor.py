"""Stratified splits and subsets, channel statistics, resolution policy, tensor conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from budgetnas.data import (
    channel_stats,
    from_arrays,
    resolve_resolution,
    stratified_split,
    stratified_subset,
    to_tensor,
)
from budgetnas.data._types import ImageData
from budgetnas.errors import DataError


def _labels() -> np.ndarray:
    # 100 of class 0, 50 of class 1, 10 of class 2, 2 of class 3, 1 of class 4, shuffled
    y = np.repeat(np.arange(5), [100, 50, 10, 2, 1])
    return np.random.default_rng(1).permutation(y)


# ----------------------------------------------------------------------------- splits


def test_split_is_stratified_and_partitions_the_indices():
    y = _labels()
    keep, val = stratified_split(y, 0.2, seed=0)
    assert keep.dtype == np.int64 and val.dtype == np.int64
    assert np.array_equal(np.sort(np.concatenate([keep, val])), np.arange(len(y)))
    assert np.all(np.diff(keep) > 0) and np.all(np.diff(val) > 0)
    counts = np.bincount(y[val], minlength=5).tolist()
    assert counts == [20, 10, 2, 1, 0]  # 1 for the 2-sample class, none for the singleton
    assert np.bincount(y[keep], minlength=5).tolist() == [80, 40, 8, 1, 1]


def test_split_tiny_fraction_still_puts_every_splittable_class_on_both_sides():
    y = _labels()
    keep, val = stratified_split(y, 0.001, seed=0)
    assert set(y[val].tolist()) == {0, 1, 2, 3}
    assert set(y[keep].tolist()) == {0, 1, 2, 3, 4}
    keep, val = stratified_split(y, 0.999, seed=0)
    assert set(y[keep].tolist()) == {0, 1, 2, 3, 4}


def test_split_is_deterministic_per_seed_and_ignores_global_rng():
    y = _labels()
    np.random.seed(123)
    a = stratified_split(y, 0.3, seed=7)
    np.random.seed(456)
    b = stratified_split(y, 0.3, seed=7)
    c = stratified_split(y, 0.3, seed=8)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan"), "half"])
def test_split_fraction_must_be_inside_open_interval(fraction):
    with pytest.raises(DataError, match=r"split fraction must be in \(0, 1\)"):
        stratified_split(_labels(), fraction, seed=0)


def test_split_rejects_non_index_labels():
    with pytest.raises(DataError, match="1-D integer array of class indices"):
        stratified_split(np.array(["a", "b"]), 0.5, seed=0)
    with pytest.raises(DataError, match="1-D integer array"):
        stratified_split(np.zeros((2, 2), int), 0.5, seed=0)


def test_subset_keeps_every_class_and_the_fraction():
    y = _labels()
    data = from_arrays(np.zeros((len(y), 2, 2), np.uint8), y)
    sub = stratified_subset(data, 0.1, seed=3)
    assert np.bincount(sub.labels, minlength=5).tolist() == [10, 5, 1, 1, 1]
    assert sub.classes == data.classes
    again = stratified_subset(data, 0.1, seed=3)
    assert np.array_equal(sub.labels, again.labels)
    assert stratified_subset(data, 1.0, seed=0) is data


def test_subset_errors():
    data = from_arrays(np.zeros((4, 2, 2), np.uint8), [0, 1, 0, 1])
    with pytest.raises(DataError, match=r"subset fraction must be in \(0, 1\]"):
        stratified_subset(data, 0.0, seed=0)
    with pytest.raises(DataError, match="takes an ImageData"):
        stratified_subset(np.zeros((4, 1, 2, 2)), 0.5, seed=0)


# ----------------------------------------------------------------------------- channel stats


def test_channel_stats_uint8_matches_numpy_in_unit_range():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(50, 3, 7, 5), dtype=np.uint8)
    mean, std = channel_stats(x)
    ref = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), rtol=1e-12)
    assert mean.dtype == np.float64 and std.dtype == np.float64


def test_channel_stats_float_chunked_is_accurate_far_from_zero(monkeypatch):
    import budgetnas.data._tensor as tensor_mod

    monkeypatch.setattr(tensor_mod, "_CHUNK_ELEMENTS", 3 * 4 * 4 * 7)  # 7 images per chunk
    rng = np.random.default_rng(0)
    x = (1000.0 + rng.normal(size=(50, 3, 4, 4))).astype(np.float32)
    mean, std = channel_stats(x)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), rtol=1e-9)


def test_channel_stats_floor_and_imagedata_input():
    d = from_arrays(np.full((4, 3, 3, 16), 7, np.uint8), [0, 1, 0, 1])
    with pytest.warns(UserWarning, match=r"channels 0, 1, .* of 16 .* every training image.*std of 1 \(every channel"):
        mean, std = channel_stats(d)
    assert mean.shape == (16,)
    np.testing.assert_allclose(mean, 7 / 255)
    assert np.all(std == 1.0)


def test_a_channel_constant_in_training_cannot_swamp_the_others_at_prediction():
    """(review, 2026-12-07) Its std floored at 1e-6, an empty blue channel turned one pixel off by
    2/255 at prediction into a normalised value of ~8,000: predictions flipped, unwarned. It takes
    the widest channel's std now (with a warning), so such a pixel moves by what it would in the
    others."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 3, 8, 8)).astype(np.uint8)
    x[:, 2] = 0  # empty blue
    x[:3, 1, 0, 0] = 9  # (green varies; nearly constant is not constant)
    with pytest.warns(UserWarning, match=r"channel 2 of 3 \(counting from 0\) is 0 \(in 0-1 units\) in every training"):
        mean, std = channel_stats(x)
    assert std[2] == std.max() and std[0] == pytest.approx(x[:, 0].astype(float).std() / 255)
    seen = x[:1].copy()
    seen[0, 2, 0, 0] = 2
    t = to_tensor(ImageData(seen, np.zeros(1, np.int64), ("a", "b"), "seen"), mean=mean, std=std)
    assert abs(float(t[0, 2, 0, 0])) == pytest.approx(2 / 255 / std.max()) and abs(float(t[0, 2, 0, 0])) < 0.05
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a channel that varies, however little against the others: as it was)
        y = x.copy()
        y[:, 2] = rng.integers(0, 2, y[:, 2].shape)
        assert channel_stats(y)[1][2] == pytest.approx(y[:, 2].astype(float).std() / 255)


def test_channel_stats_errors():
    with pytest.raises(DataError, match=r"\(N, C, H, W\) with N > 0"):
        channel_stats(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match="N > 0"):
        channel_stats(np.zeros((0, 1, 8, 8), np.uint8))


# ----------------------------------------------------------------------------- resolution


def test_resolve_resolution_policy():
    assert resolve_resolution((28, 28), None) == 28
    assert resolve_resolution((8, 8), None) == 8
    assert resolve_resolution((224, 160), None) == 32
    assert resolve_resolution((20, 40), None) == 32
    assert resolve_resolution((20, 30), None, cap=64) == 30
    assert resolve_resolution((2, 3), None) == 4
    assert resolve_resolution((224, 224), 64) == 64
    assert resolve_resolution((8, 8), 16) == 16


@pytest.mark.parametrize("bad", [3, 0, -8, 2.5, True, "32"])
def test_resolve_resolution_rejects_bad_requests(bad):
    with pytest.raises(DataError, match="resolution"):
        resolve_resolution((28, 28), bad)


def test_resolve_resolution_too_small_message():
    with pytest.raises(DataError, match="too small.*at least 4"):
        resolve_resolution((28, 28), 2)


# ----------------------------------------------------------------------------- to_tensor


def test_to_tensor_normalises_uint8_exactly():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(9, 3, 5, 5), dtype=np.uint8)
    d = from_arrays(x, [0, 1, 2] * 3, channels_last=False)
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.25, 0.5]
    t = to_tensor(d, mean=mean, std=std)
    assert t.dtype == torch.float32 and t.shape == (9, 3, 5, 5)
    ref = (x / 255.0 - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    np.testing.assert_allclose(t.numpy(), ref, atol=1e-5)


def test_to_tensor_with_training_stats_gives_zero_mean_unit_std():
    x = np.random.default_rng(0).random((20, 6, 6, 2)).astype(np.float32)
    d = from_arrays(x, [0, 1] * 10)
    mean, std = channel_stats(d.images)
    t = to_tensor(d, mean=mean, std=std)
    np.testing.assert_allclose(t.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(t.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-4)


def test_to_tensor_resizes_to_square_with_antialiased_bilinear(monkeypatch):
    import budgetnas.data._tensor as tensor_mod

    monkeypatch.setattr(tensor_mod, "_CHUNK_ELEMENTS", 3 * 40 * 30 * 4)  # 4 images per chunk
    x = np.random.default_rng(0).integers(0, 256, size=(10, 40, 30, 3), dtype=np.uint8)
    d = from_arrays(x, [0, 1] * 5)
    t = to_tensor(d, mean=[0.5] * 3, std=[0.25] * 3, resolution=16)
    assert t.shape == (10, 3, 16, 16)
    src = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    ref = F.interpolate(src, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(t, (ref - 0.5) / 0.25, atol=1e-5, rtol=1e-5)
    up = to_tensor(d, mean=[0.5] * 3, std=[0.25] * 3, resolution=48)
    assert up.shape == (10, 3, 48, 48)


def test_to_tensor_scalar_stats_and_errors():
    d = from_arrays(np.zeros((4, 4, 4, 3), np.uint8), [0, 1, 0, 1])
    assert to_tensor(d, mean=0.0, std=1.0).shape == (4, 3, 4, 4)
    with pytest.raises(DataError, match="mean has 2 values but the images have 3 channel"):
        to_tensor(d, mean=[0.0, 0.0], std=[1.0] * 3)
    with pytest.raises(DataError, match="std must be > 0"):
        to_tensor(d, mean=[0.0] * 3, std=[1.0, 0.0, 1.0])
    with pytest.raises(DataError, match="resolution 2 is too small"):
        to_tensor(d, mean=[0.0] * 3, std=[1.0] * 3, resolution=2)
    with pytest.raises(DataError, match="takes an ImageData"):
        to_tensor(np.zeros((4, 3, 4, 4)), mean=[0.0] * 3, std=[1.0] * 3)
