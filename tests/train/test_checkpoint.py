"""Checkpoints: a run stopped mid-epoch and resumed equals one never stopped; corrupt files are skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from budgetnas.spaces import NB201Space
from budgetnas.train import Checkpointer, Preempted, TrainConfig, seeded_build, train

ARCH = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "none", "avg_pool_3x3")


@pytest.fixture(scope="module")
def data(digits):
    x, y = digits
    xt = (torch.tensor(x[:, None], dtype=torch.float32) / 255 - 0.3) / 0.4
    return xt[:320], torch.tensor(y[:320]), xt[320:420], torch.tensor(y[320:420])


def _model():
    space = NB201Space(C=4, N=1)
    return seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=10), 0)


CFG = TrainConfig(epochs=3, batch_size=32)


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, data) -> None:
    straight = train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu")
    ck = Checkpointer(tmp_path / "t.ckpt")
    calls = [0]

    def stop_in_epoch_two() -> bool:
        calls[0] += 1
        return calls[0] == 10 + 4  # 10 steps per epoch: stop before step 5 of epoch 2

    with pytest.raises(Preempted) as info:
        train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck,
              should_stop=stop_in_epoch_two)
    assert (info.value.epoch, info.value.step, info.value.saved) == (2, 3, True)
    restored: list = []
    resumed = train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck,
                    on_resume=restored.extend)
    assert resumed.resumed_from == (2, 3) and len(restored) == 1
    assert [r.train_loss for r in resumed.curve] == [r.train_loss for r in straight.curve]
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(a, b)


def test_interval_saves_inside_an_epoch(tmp_path: Path, data) -> None:
    ck = Checkpointer(tmp_path / "t.ckpt", interval=0.0)  # save after every step
    seen = []

    def stop_after_three_steps() -> bool:
        seen.append(1)
        return len(seen) == 4

    with pytest.raises(Preempted):
        train(_model(), *data, TrainConfig(epochs=1, batch_size=32), num_classes=10, device="cpu",
              checkpoint=ck, should_stop=stop_after_three_steps)
    state = ck.load()
    assert state is not None and state["epoch"] == 1 and state["i"] == 3 and state["step"] == 3


def test_corrupt_or_truncated_checkpoints_are_skipped_with_a_warning(tmp_path: Path, data) -> None:
    ck = Checkpointer(tmp_path / "t.ckpt")
    train(_model(), *data, TrainConfig(epochs=1, batch_size=32), num_classes=10, device="cpu", checkpoint=ck)
    raw = ck.path.read_bytes()
    assert ck.load() is not None
    ck.path.write_bytes(raw[:-100])  # truncated: a kill in the middle of a (non-atomic) copy
    with pytest.warns(UserWarning, match="corrupt or half-written"):
        assert ck.load() is None
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    ck.path.write_bytes(bytes(flipped))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        result = train(_model(), *data, TrainConfig(epochs=1, batch_size=32), num_classes=10, device="cpu",
                       checkpoint=ck)
    assert result.resumed_from is None  # trained from the start instead of loading garbage
    assert ck.load() is not None  # and wrote a good checkpoint again
    assert not list(tmp_path.glob("*.tmp*"))


def test_checkpoint_from_another_batch_size_is_not_used(tmp_path: Path, data) -> None:
    ck = Checkpointer(tmp_path / "t.ckpt")
    train(_model(), *data, TrainConfig(epochs=1, batch_size=32), num_classes=10, device="cpu", checkpoint=ck)
    r = train(_model(), *data, TrainConfig(epochs=1, batch_size=16), num_classes=10, device="cpu", checkpoint=ck)
    assert r.resumed_from is None and np.isfinite(r.curve[0].train_loss)


def test_a_checkpoint_from_another_kind_of_device_is_not_resumed(tmp_path: Path, data, caplog) -> None:
    # A CPU generator's state cannot seed a CUDA generator (and the reverse), and CUDA's fused SGD
    # refuses momentum buffers laid out for the CPU's NCHW weights: such a run starts again.
    ck = Checkpointer(tmp_path / "t.ckpt")
    with pytest.raises(Preempted):
        train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck,
              should_stop=lambda: True)
    state = ck.load()
    assert state is not None and state["device_type"] == "cpu"
    ck.save({**state, "device_type": "cuda", "generator": torch.zeros(16, dtype=torch.uint8)})
    with caplog.at_level("WARNING", logger="budgetnas"):
        again = train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck)
    assert again.resumed_from is None and "saved on cuda" in caplog.text
    straight = train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu")
    assert [r.train_loss for r in again.curve] == [r.train_loss for r in straight.curve]


@pytest.mark.parametrize("change", ["images", "epochs"])
def test_a_checkpoint_of_other_data_or_another_schedule_is_not_resumed(tmp_path: Path, data, caplog,
                                                                       change: str) -> None:
    # Its shuffled order indexes the images it trained on (fewer here: out of range, or others),
    # and its step count belongs to another learning-rate schedule.
    ck = Checkpointer(tmp_path / "t.ckpt")
    x, y, vx, vy = data
    with pytest.raises(Preempted):
        train(_model(), x, y, vx, vy, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck,
              should_stop=lambda: True)
    if change == "images":
        x, y = x[:200], y[:200]
    cfg = TrainConfig(epochs=2 if change == "epochs" else 3, batch_size=32)
    with caplog.at_level("WARNING", logger="budgetnas"):
        again = train(_model(), x, y, vx, vy, cfg, num_classes=10, seed=0, device="cpu", checkpoint=ck)
    assert again.resumed_from is None and "training from the start" in caplog.text
    straight = train(_model(), x, y, vx, vy, cfg, num_classes=10, seed=0, device="cpu")
    assert [r.train_loss for r in again.curve] == [r.train_loss for r in straight.curve]


def test_a_process_killed_during_the_epochs_decision_resumes_before_that_epoch(tmp_path: Path, data) -> None:
    """The epoch's checkpoint was saved before ``on_epoch`` (a pruner's decision) ran: a process
    killed in between resumed after the rung and was never pruned (a strategies review,
    2026-12-06). The checkpoint now follows the decision: the resumed run meets it again."""
    class Killed(BaseException):
        pass

    def killed_at_epoch_two(record) -> bool:
        if record.epoch == 2:
            raise Killed
        return False

    ck = Checkpointer(tmp_path / "t.ckpt")
    with pytest.raises(Killed):
        train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck, on_epoch=killed_at_epoch_two)
    seen: list = []
    restored: list = []
    train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck, on_resume=restored.extend,
          on_epoch=lambda r: seen.append(r.epoch) or False)
    assert len(restored) == 1 and seen == [2, 3]  # (epoch 2's decision is taken again)


@pytest.mark.parametrize("change", ["seed", "lr", "network", "wiring"])
def test_a_checkpoint_saved_by_another_training_is_not_resumed_as_this_ones(tmp_path: Path, data, caplog,
                                                                           change: str) -> None:
    """A review, 2026-12-06: a checkpoint of another seed or rate was resumed silently (the other
    run's generator and weights continued), and one of another network failed with
    load_state_dict's raw size-mismatch error. Each now starts from the beginning and says why. So
    does another cell of the same weights, a skip and a none edge swapped (review H, 2026-12-07)."""
    ck = Checkpointer(tmp_path / "t.ckpt")
    with pytest.raises(Preempted):
        train(_model(), *data, CFG, num_classes=10, seed=0, device="cpu", checkpoint=ck,
              should_stop=lambda: True)
    seed = 7 if change == "seed" else 0
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.05 if change == "lr" else CFG.lr)
    swapped = (*ARCH[:3], ARCH[4], ARCH[3], ARCH[5])  # (skip_connect on 3<-1 where it was on 3<-0)
    model = (lambda: seeded_build(lambda: NB201Space(C=6, N=1).build(ARCH, in_channels=1, num_classes=10), 0)) \
        if change == "network" else (lambda: seeded_build(lambda: NB201Space(C=4, N=1).build(
            swapped, in_channels=1, num_classes=10), 0)) if change == "wiring" else _model
    with caplog.at_level("WARNING", logger="budgetnas"):
        again = train(model(), *data, cfg, num_classes=10, seed=seed, device="cpu", checkpoint=ck)
    named = {"seed": "seed", "lr": "peak_lr", "network": "weights", "wiring": "wiring"}[change]
    assert again.resumed_from is None and "saved by another training" in caplog.text and named in caplog.text
    straight = train(model(), *data, cfg, num_classes=10, seed=seed, device="cpu")
    assert [r.train_loss for r in again.curve] == [r.train_loss for r in straight.curve]
