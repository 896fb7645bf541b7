"""A training with a time limit on a device slower than expected: its schedule is shortened to end
in time, annealed to zero, never below one epoch, and a shortened schedule resumes as it was.

The device's slowness is a clock that advances one second per step (``StepClock``): the trainer
reads the pace from its clock, so these tests are exact, not timed."""

from __future__ import annotations

import math

import pytest
import torch

from budgetnas.spaces import NB201Space
from budgetnas.train import Checkpointer, Preempted, TrainConfig, seeded_build, train
from budgetnas.train.trainer import TIME_LIMIT_MARGIN, _lr_at, _Schedule

ARCH = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "none", "nor_conv_3x3")
STEPS_PER_EPOCH = 10  # 600 training images at batch 64 (the last batch of 24 kept)


class StepClock:
    """A device that takes one second per step: ``should_stop`` (polled before every step) ticks
    it, and it stops the run (as a signal would) before step ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.t, self.stop_at = 0.0, stop_at

    def __call__(self) -> float:
        return self.t

    def should_stop(self) -> bool:
        if self.stop_at is not None and self.t >= self.stop_at:
            return True
        self.t += 1.0
        return False


def _train(tensors, clock: StepClock | None = None, time_limit: float | None = None, epochs: int = 4,
           checkpoint: Checkpointer | None = None):
    model = seeded_build(lambda: NB201Space(C=4, N=1).build(ARCH, in_channels=1, num_classes=10), 0)
    kw = {} if clock is None else {"clock": clock, "should_stop": clock.should_stop}
    return train(model, *tensors, TrainConfig(epochs=epochs, batch_size=64), num_classes=10, seed=0,
                 device="cpu", time_limit=time_limit, checkpoint=checkpoint, **kw)


def test_the_shortened_schedule_plays_the_rest_faster_and_anneals_to_zero_at_the_new_end() -> None:
    full = _Schedule(total=100, warmup=10, peak=0.4)
    assert [full.lr(s) for s in range(100)] == [_lr_at(s, 100, 10, 0.4) for s in range(100)]  # as it was
    cut = _Schedule(total=100, warmup=10, peak=0.4)
    cut.shorten(40, 60)
    assert cut.end == 60
    assert [cut.lr(s) for s in range(40)] == [full.lr(s) for s in range(40)]
    assert cut.lr(40) == pytest.approx(full.lr(40))  # continuous where it was cut
    rates = [cut.lr(s) for s in range(40, 61)]
    assert all(a > b for a, b in zip(rates, rates[1:]))  # decaying all the way
    assert rates[-1] == pytest.approx(0.0, abs=1e-12) and rates[-2] < 0.02 * rates[0]
    assert cut.lr(50) == pytest.approx(full.lr(70))  # halfway to the new end: where the old one was
    before = cut.lr(50)
    cut.shorten(50, 55)  # shortened again, from where the first shortening had got to
    assert cut.lr(50) == pytest.approx(before) and cut.lr(55) == pytest.approx(0.0, abs=1e-12)
    assert all(cut.lr(s) > cut.lr(s + 1) for s in range(50, 55))
    cut.shorten(52, 58)  # a later end is not a shortening
    assert cut.end == 55
    warm = _Schedule(total=100, warmup=10, peak=0.4)
    warm.shorten(4, 20)  # cut during the warm-up: it still reaches the peak, sooner, then decays
    assert warm.lr(4) == pytest.approx(full.lr(4))
    assert max(warm.lr(s) for s in range(4, 20)) == pytest.approx(0.4)
    assert warm.lr(19) < 0.05 * 0.4
    restored = _Schedule(total=100, warmup=10, peak=0.4)
    restored.load(cut.state())
    assert [restored.lr(s) for s in range(100)] == [cut.lr(s) for s in range(100)]


def test_a_generous_or_no_time_limit_changes_nothing(tensors) -> None:
    free = _train(tensors)
    roomy = _train(tensors, StepClock(), time_limit=1e6)
    assert free.shortened is None and roomy.shortened is None
    assert [r.train_loss for r in free.curve] == [r.train_loss for r in roomy.curve]
    for a, b in zip(free.model.parameters(), roomy.model.parameters()):
        assert torch.equal(a, b)
    assert _train(tensors, StepClock(), time_limit=math.inf).shortened is None


def test_a_slow_device_ends_the_training_within_its_time_limit(tensors, caplog) -> None:
    clock = StepClock()
    with caplog.at_level("WARNING", logger="budgetnas"):
        result = _train(tensors, clock, time_limit=25.0)
    fits = math.floor(25.0 * (1 - TIME_LIMIT_MARGIN))  # one second a step
    assert result.shortened == (fits, 4 * STEPS_PER_EPOCH)
    assert result.device_seconds == fits <= 25.0
    assert [r.epoch for r in result.curve] == [1, 2, 3]  # the third one cut short, recorded
    assert math.isfinite(result.curve[-1].train_loss) and "accuracy" in result.curve[-1].metrics
    assert result.curve[-1].train_loss < result.curve[0].train_loss  # still learning at the annealed end
    assert "its schedule is shortened to 24 of 40 steps" in caplog.text
    assert caplog.text.count("shortened") == 1  # told once


def test_a_shortened_schedule_still_trains_one_epoch(tensors) -> None:
    result = _train(tensors, StepClock(), time_limit=3.0)
    assert result.shortened == (STEPS_PER_EPOCH, 4 * STEPS_PER_EPOCH)
    assert len(result.curve) == 1 and result.curve[0].epoch == 1


def test_a_shortened_training_stopped_and_resumed_ends_where_it_would_have(tensors, tmp_path) -> None:
    whole = _train(tensors, StepClock(), time_limit=25.0)
    ck = Checkpointer(tmp_path / "t.ckpt")
    with pytest.raises(Preempted):
        _train(tensors, StepClock(stop_at=13), time_limit=25.0, checkpoint=ck)
    resumed = _train(tensors, checkpoint=ck)  # no limit now: the shortened schedule is kept
    assert resumed.shortened == whole.shortened
    assert [r.train_loss for r in resumed.curve] == [r.train_loss for r in whole.curve]
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    again = _train(tensors, checkpoint=ck)  # killed after it ended mid-epoch: it ends at once, the same
    assert again.shortened == whole.shortened and len(again.curve) == len(whole.curve)
    assert again.curve[-1].train_loss == whole.curve[-1].train_loss
