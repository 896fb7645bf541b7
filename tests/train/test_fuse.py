"""``TrainConfig(fuse=True)``: the loss, forward and backward compiled by inductor (real compiles).

Cold compiles take ~15 s each on a 2-core CPU, so the networks here are tiny.
"""

from __future__ import annotations

import gc
import os
import shutil

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters
from torch._subclasses.fake_tensor import FakeTensor

from budgetnas.errors import ConfigError
from budgetnas.spaces import NB201Space
from budgetnas.train import TrainConfig, seeded_build, train

# Inductor compiles C++ on the CPU; without a compiler fuse falls back (tested here only with one).
pytestmark = pytest.mark.skipif(
    not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c),
    reason="inductor needs a C++ compiler on the CPU")

ARCH = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "none", "nor_conv_3x3")




def _net(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


class _DataDependent(nn.Module):
    """Python control flow on a tensor's value: dynamo cannot trace it as one graph."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _net(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out * 2 if float(out.abs().max()) > 1e6 else out


def _fit(build, tensors, seed: int = 0, epochs: int = 2, **kw):
    model = seeded_build(build, seed)
    x, y, vx, vy = tensors
    # 576 images: whole batches of 64 (a last partial batch would be dropped by both).
    return train(model, x[:576], y[:576], vx, vy, TrainConfig(epochs=epochs, batch_size=64, **kw), num_classes=10,
                 seed=seed, device="cpu")


def test_fused_training_follows_the_eager_trajectory(tensors) -> None:
    eager = _fit(lambda: _net(6), tensors)
    fused = _fit(lambda: _net(6), tensors, fuse=True)
    assert fused.fused and not eager.fused
    # The compilation, a fixed cost of a training, is timed apart from its steps.
    assert 0 < fused.compile_seconds < fused.device_seconds and eager.compile_seconds == 0
    # fp32 on the CPU: fused kernels only reorder floating-point sums.
    for a, b in zip(eager.curve, fused.curve, strict=True):
        assert abs(a.train_loss - b.train_loss) <= 1e-4 * a.train_loss, (a, b)
        assert abs(a.metrics["accuracy"] - b.metrics["accuracy"]) <= 0.01
    # Weights and BatchNorm's running statistics: the compiling step was undone in full.
    for (name, a), (_, b) in zip(eager.model.state_dict().items(), fused.model.state_dict().items()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4, rtol=1e-3), name
    assert fused.curve[-1].train_loss < fused.curve[0].train_loss


def _fake_tensors() -> int:
    gc.collect()
    return sum(isinstance(o, FakeTensor) for o in gc.get_objects())


def test_inductor_compiles_the_step_and_its_compilation_is_freed(tensors) -> None:
    # Without inductor's on-disk cache every compilation generates code, as a new network in a
    # search does (a warm cache hid a leak here: the ShapeEnv of every such compilation stayed).
    with torch._inductor.config.patch(fx_graph_cache=False):
        before = counters["aot_autograd"]["ok"]
        first = _fit(lambda: _net(4), tensors, epochs=1, fuse=True)
        assert first.fused and counters["aot_autograd"]["ok"] == before + 1  # forward and backward
        del first
        alive = []
        for width in (3, 5, 6, 7):  # more networks compiled: their traced state does not pile up
            _fit(lambda w=width: _net(w), tensors, epochs=1, fuse=True)
            alive.append(_fake_tensors())
    # (the first compilations also fill torch's one-off state, such as the last RNG tracker)
    assert alive[-1] <= alive[1], alive


def test_every_network_gets_its_own_compiled_code(tensors) -> None:
    # A search compiles many different networks. Sharing one traced function, the second network
    # here would be past dynamo's recompile limit and train uncompiled.
    with torch._dynamo.config.patch(recompile_limit=1):
        first = _fit(lambda: _net(5), tensors, epochs=1, fuse=True)
        second = _fit(lambda: _net(7), tensors, epochs=1, fuse=True)
    assert first.fused and second.fused


def test_a_network_that_cannot_compile_trains_uncompiled_and_says_so(tensors, caplog) -> None:
    with caplog.at_level("WARNING", logger="budgetnas"):
        tried = _fit(_DataDependent, tensors, fuse=True)
    plain = _fit(_DataDependent, tensors)
    assert not tried.fused
    assert "torch.compile failed" in caplog.text and "without fused kernels" in caplog.text
    # The failed attempt is undone: exactly the run that never tried.
    assert [r.train_loss for r in tried.curve] == [r.train_loss for r in plain.curve]
    for pa, pb in zip(tried.model.parameters(), plain.model.parameters()):
        assert torch.equal(pa, pb)


def test_fused_training_uses_one_batch_shape(tensors) -> None:
    # A last partial batch would be a second compilation (with dynamo's limit at 1: a failure).
    x, y, vx, vy = tensors  # 600 images: 9 batches of 64 and 24 left over
    with torch._dynamo.config.patch(recompile_limit=1):
        model = seeded_build(lambda: _net(6), 0)
        result = train(model, x, y, vx, vy, TrainConfig(epochs=1, batch_size=64, fuse=True), num_classes=10,
                       device="cpu")
    assert result.fused and len(result.curve) == 1


def test_fuse_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="fuse must be True or False"):
        TrainConfig(fuse="yes")  # type: ignore[arg-type]


@pytest.mark.gpu
def test_fused_graph_training_follows_the_eager_trajectory_on_cuda(tensors) -> None:
    space = NB201Space(C=8, N=1)

    def run(**kw):
        model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=10), 0)
        return train(model, *tensors, TrainConfig(epochs=4, batch_size=64, **kw), num_classes=10, seed=0,
                     device="cuda")

    eager, fused = run(step_mode="eager"), run(step_mode="graph", fuse=True)
    assert fused.fused and fused.step_mode == "graph"
    for a, b in zip(eager.curve, fused.curve, strict=True):  # bf16: fused kernels round differently
        assert abs(a.train_loss - b.train_loss) <= 0.02 * max(a.train_loss, b.train_loss), (a, b)
    assert abs(eager.final["accuracy"] - fused.final["accuracy"]) <= 0.03
