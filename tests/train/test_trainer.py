"""The trainer on real (tiny) data: repeatability, metrics, failures, early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score

from budgetnas.errors import ConfigError, DataError, TrialFailed
from budgetnas.spaces import NB201Space
from budgetnas.train import TrainConfig, evaluate, metrics_from_confusion, predict_logits, resolve_device, seeded_build, train
from budgetnas.train.trainer import _augment, _capture_streams
from tests.conftest import cuda_allocated

ARCH = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "none", "nor_conv_3x3")




def _run(tensors, seed: int = 0, **kw):
    space = NB201Space(C=4, N=1)
    model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=10), seed)
    cfg = TrainConfig(epochs=kw.pop("epochs", 3), batch_size=64, **kw)
    return train(model, *tensors, cfg, num_classes=10, seed=seed, device="cpu")


def test_cpu_training_is_bit_for_bit_repeatable_and_learns(tensors) -> None:
    a = _run(tensors)
    b = _run(tensors)
    assert [r.train_loss for r in a.curve] == [r.train_loss for r in b.curve]
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    assert a.final["accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert a.curve[-1].train_loss < a.curve[0].train_loss
    c = _run(tensors, seed=1)
    assert c.curve[0].train_loss != a.curve[0].train_loss


def test_global_rng_is_left_alone(tensors) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _run(tensors, epochs=1)
    assert torch.equal(torch.rand(3), expected)


def test_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 400)
    pred = np.where(rng.random(400) < 0.6, y, rng.integers(0, 5, 400))
    pred[pred == 4] = 3  # class 4 never predicted
    conf = torch.bincount(torch.tensor(y * 5 + pred), minlength=25).reshape(5, 5)
    m = metrics_from_confusion(conf)
    assert m["accuracy"] == pytest.approx((y == pred).mean())
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))


def test_nan_loss_is_a_trial_failure(tensors) -> None:
    space = NB201Space(C=4, N=1)
    model = space.build(ARCH, in_channels=1, num_classes=10)
    with pytest.raises(TrialFailed, match="nan"):
        train(model, *tensors, TrainConfig(epochs=1), num_classes=10, device="cpu", inject_fault="nan")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        train(model, *tensors, TrainConfig(epochs=1), num_classes=10, device="cpu", inject_fault="oom")


def test_a_huge_learning_rate_diverges_into_a_clear_failure(tensors) -> None:
    with pytest.raises(TrialFailed, match="diverged"):
        _run(tensors, epochs=2, lr=1e12, grad_clip=None)


def test_a_network_broken_by_the_last_step_of_an_epoch_fails_instead_of_scoring() -> None:
    # One step per epoch: its loss is computed before the update, so it is finite, but the update
    # leaves weights whose outputs overflow. Validation used to score that network (argmax of NaN).
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    space = NB201Space(C=4, N=1)
    model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=3), 0)
    cfg = TrainConfig(epochs=1, batch_size=64, lr=1e30, grad_clip=None, warmup_epochs=0)
    with pytest.raises(TrialFailed, match="after epoch 1 \\(diverged\\)"):
        train(model, x, y, x, y, cfg, num_classes=3, device="cpu")


def test_on_epoch_can_stop_early(tensors) -> None:
    seen = []
    space = NB201Space(C=4, N=1)
    model = space.build(ARCH, in_channels=1, num_classes=10)
    result = train(model, *tensors, TrainConfig(epochs=5, batch_size=64), num_classes=10, device="cpu",
                   on_epoch=lambda r: seen.append(r.epoch) or r.epoch == 2)
    assert seen == [1, 2] and result.stopped_early and len(result.curve) == 2
    assert set(result.curve[0].metrics) >= {"accuracy", "balanced_accuracy", "macro_f1", "loss"}


def test_augmentation_is_batched_shifts_and_flips() -> None:
    """Each image of a batch gets its own random crop (a shift within the zero padding) and its own
    coin flip: a batch of 64 has flipped and unflipped images, shifted ones, and several shifts.
    (Checking only that outputs *could* be flips or shifts passed with augmentation turned off.)"""
    b, h, w, pad = 64, 6, 6, 2
    # Every pixel of every image distinct and nonzero: a crop or a mirror image is identified exactly.
    x = torch.arange(b * 1 * h * w, dtype=torch.float32).reshape(b, 1, h, w) + 1
    out = _augment(x, 0, True, torch.Generator().manual_seed(0))
    flipped = []
    for i in range(b):  # each image either unchanged or mirrored
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
        flipped.append(torch.equal(out[i], x[i].flip(-1)))
    assert 0 < sum(flipped) < b  # (a coin per image: some flipped, some not)

    out = _augment(x, pad, False, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    shifts = []
    for i in range(b):  # each a crop of the zero-padded image at one offset (dy, dx)
        found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(out[i], padded[i, :, dy:dy + h, dx:dx + w])]
        assert len(found) == 1, (i, found)
        shifts.append(found[0])
    assert sum(s != (pad, pad) for s in shifts) > b // 2  # (most shifted: 24 of 25 offsets move the image)
    assert len(set(shifts)) > 5  # (drawn per image, not one shift for the whole batch)
    both = _augment(x, pad, True, torch.Generator().manual_seed(2))
    assert not torch.equal(both, x)


def test_config_and_device_errors() -> None:
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")
    for other in ("mps", "meta", "xpu"):  # real torch device types budgetnas does not train on
        with pytest.raises(ConfigError, match="not supported: budgetnas trains on 'cpu' or 'cuda'"):
            resolve_device(other)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    else:
        with pytest.raises(ConfigError, match="there are only"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    assert TrainConfig().resolved_batch_size(60000) == 256
    assert TrainConfig().resolved_batch_size(1000) == 32


@pytest.mark.parametrize("field, value, what", [
    ("momentum", 1.0, "momentum must be in"), ("momentum", -0.1, "momentum must be in"),
    ("grad_clip", -1.0, "grad_clip must be"), ("grad_clip", float("nan"), "grad_clip must be"),
    ("eval_batch_size", 0, "eval_batch_size must be"), ("eval_batch_size", 2.5, "eval_batch_size must be"),
    ("crop_padding", -2, "crop_padding must be"), ("crop_padding", 1.5, "crop_padding must be"),
    ("lr", 1e40, "lr must be at most 1e\\+30"),  # (overflowed in the optimizer's first step)
    # (a review, 2026-12-06: NaN weight decay failed as a "diverged" loss with "try a lower lr",
    # NaN or infinite warm-up with int()'s errors, batch size 1 with BatchNorm's at 4 px)
    ("weight_decay", float("nan"), "weight_decay must be a non-negative number"),
    ("warmup_epochs", float("nan"), "warmup_epochs must be a non-negative number"),
    ("warmup_epochs", float("inf"), "warmup_epochs must be a non-negative number"),
    ("batch_size", 1, "batch_size must be an integer of at least 2"),
])
def test_settings_that_would_fail_or_mislead_later_are_refused_up_front(field, value, what) -> None:
    with pytest.raises(ConfigError, match=what):
        TrainConfig(**{field: value})
    TrainConfig(momentum=0.0, grad_clip=0, crop_padding=0)  # the off switches stay allowed


def test_a_last_batch_of_one_image_is_dropped_not_a_batchnorm_crash() -> None:
    # 4x4 inputs reach 1x1 after NB201's two reductions: BatchNorm in training mode cannot
    # normalise a batch of one image there ("Expected more than 1 value per channel").
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(33, 1, 4, 4, generator=gen), torch.randint(0, 3, (33,), generator=gen)
    space = NB201Space(C=4, N=1)
    model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=3), 0)
    result = train(model, x, y, x, y, TrainConfig(epochs=2, batch_size=32), num_classes=3, device="cpu")
    assert len(result.curve) == 2 and all(np.isfinite(r.train_loss) for r in result.curve)


def test_a_last_partial_batch_is_dropped_on_every_device() -> None:
    """(review H, 2026-12-07) On the CPU a last batch of a few images took a full learning-rate step
    and moved BatchNorm's statistics before each evaluation: 1282 training images (a last batch of 2
    at 256) scored 0.66 +- 0.14 where 1280 scored 0.87 +- 0.05. CUDA dropped it; the CPU now does."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(66, 1, 8, 8, generator=gen), torch.randint(0, 3, (66,), generator=gen)
    model = seeded_build(lambda: NB201Space(C=4, N=1).build(ARCH, in_channels=1, num_classes=3), 0)
    batches: list[int] = []
    model.register_forward_pre_hook(lambda m, args: batches.append(len(args[0])) if m.training else None)
    train(model, x, y, x[:6], y[:6], TrainConfig(epochs=2, batch_size=32), num_classes=3, device="cpu")
    assert batches == [32, 32, 32, 32]  # (2 of the 66 left out of each epoch, others each time)
    batches.clear()
    model = seeded_build(lambda: NB201Space(C=4, N=1).build(ARCH, in_channels=1, num_classes=3), 0)
    model.register_forward_pre_hook(lambda m, args: batches.append(len(args[0])) if m.training else None)
    train(model, x[:20], y[:20], x[:6], y[:6], TrainConfig(epochs=1, batch_size=32), num_classes=3, device="cpu")
    assert batches == [20]  # (a set smaller than a batch: one batch of all of it)


def test_predicting_zero_images_gives_zero_rows_of_class_logits() -> None:
    space = NB201Space(C=4, N=1)
    model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=3), 0)
    none = torch.zeros(0, 1, 8, 8)
    assert predict_logits(model, none, device="cpu").shape == (0, 3)
    metrics = evaluate(model, none, torch.zeros(0, dtype=torch.long), num_classes=3, device="cpu")
    assert metrics["accuracy"] == 0.0 and np.isnan(metrics["loss"])


@pytest.mark.gpu
def test_gpu_training_repeats_within_tolerance(tensors) -> None:
    space = NB201Space(C=8, N=1)
    runs = []
    for _ in range(2):
        model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=10), 0)
        r = train(model, *tensors, TrainConfig(epochs=3, batch_size=64), num_classes=10, seed=0, device="cuda")
        runs.append(r)
    a, b = (r.curve[-1].train_loss for r in runs)
    assert abs(a - b) < 0.05 * max(a, b)  # bf16 + cuDNN autotuning: equal within 5%
    assert abs(runs[0].final["accuracy"] - runs[1].final["accuracy"]) < 0.05


def test_graph_mode_falls_back_to_eager_on_the_cpu_and_says_so(tensors, caplog: pytest.LogCaptureFixture) -> None:
    from budgetnas.train import trainer

    trainer._SAID_EAGER.clear()
    with caplog.at_level("INFO", logger="budgetnas"):
        graph = _run(tensors, epochs=2, step_mode="graph")
        _run(tensors, epochs=1, step_mode="graph")
    eager = _run(tensors, epochs=2, step_mode="eager")
    assert graph.step_mode == "eager" and eager.step_mode == "eager"
    assert caplog.text.count("CUDA graphs need a CUDA device") == 1  # (once, not for every trial)
    assert [r.train_loss for r in graph.curve] == [r.train_loss for r in eager.curve]  # the same path
    auto = _run(tensors, epochs=2)  # "auto" on the CPU: eager, silently
    assert auto.step_mode == "eager" and auto.batch_size == 64


def test_step_mode_and_batch_size_rules() -> None:
    with pytest.raises(ConfigError, match="step_mode must be one of auto, eager, graph"):
        TrainConfig(step_mode="cudagraph")
    # A small network needs bigger batches to fill a GPU: up to 512 there, 256 on the CPU.
    assert TrainConfig().resolved_batch_size(45000, "cuda") == 512
    assert TrainConfig().resolved_batch_size(45000, "cpu") == 256
    assert TrainConfig().resolved_batch_size(1000, "cuda") == 32
    assert TrainConfig(batch_size=4096).resolved_batch_size(1000, "cuda") == 1000


def test_evaluation_batches_keep_a_cpu_batch_in_cache_and_fill_a_gpu() -> None:
    # Measured on the 2-core CPU (2026-12-06, benchmarks/eval_speed.py): 1024 images a batch, the
    # old default everywhere, took up to 3x as long as the best batch for the 28 px final network.
    from budgetnas.train import eval_batch_size

    def net(C: int) -> torch.nn.Module:
        return NB201Space(C=C, N=1).build(ARCH, in_channels=1, num_classes=10)

    assert eval_batch_size("cpu", net(16), (1, 28, 28)) == 64  # the final network on Fashion-MNIST
    assert eval_batch_size("cpu", net(8), (1, 16, 16)) == 512  # a search network at 16 px
    assert eval_batch_size("cpu", net(8), (1, 4, 4)) == 1024  # (at most 1024)
    assert eval_batch_size("cpu", net(64), (3, 224, 224)) == 32  # (at least 32)
    assert eval_batch_size("cpu", torch.nn.Linear(4, 2), (4,)) == 64  # no convolution to size it by
    assert eval_batch_size("cuda", net(16), (1, 28, 28)) == 1024
    # The batch changes the speed, not the answer.
    model = seeded_build(lambda: net(4), 0)
    x = torch.randn(300, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(predict_logits(model, x, device="cpu"), predict_logits(model, x, device="cpu", batch_size=7),
                          atol=1e-5)


def _cuda_run(tensors, mode: str, epochs: int = 4):
    space = NB201Space(C=8, N=1)
    model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=10), 0)
    cfg = TrainConfig(epochs=epochs, batch_size=64, step_mode=mode)
    return train(model, *tensors, cfg, num_classes=10, seed=0, device="cuda")


@pytest.mark.gpu
def test_graph_captured_and_eager_training_follow_the_same_trajectory(tensors) -> None:
    eager, graph = _cuda_run(tensors, "eager"), _cuda_run(tensors, "graph")
    assert eager.step_mode == "eager" and graph.step_mode == "graph"
    # Same kernels, same data order; bf16 and cuDNN's algorithm choice leave small differences.
    for a, b in zip(eager.curve, graph.curve):
        assert abs(a.train_loss - b.train_loss) <= 0.02 * max(a.train_loss, b.train_loss), (a, b)
    assert abs(eager.final["accuracy"] - graph.final["accuracy"]) <= 0.03


@pytest.mark.gpu
def test_graph_training_leaves_no_gpu_memory_behind(tensors) -> None:
    _cuda_run(tensors, "graph", epochs=1)
    before = cuda_allocated()
    for _ in range(3):
        r = _cuda_run(tensors, "graph", epochs=1)
        del r
    assert cuda_allocated() <= before  # the graph pools and gradients were freed


@pytest.mark.gpu
def test_captures_draw_no_new_streams_from_the_pool() -> None:
    # torch.cuda.Stream() cycles through 32 streams per device: a capture that drew new ones each
    # time would, after ~16 trials, capture on a stream another candidate is training on.
    dev = torch.device("cuda")
    assert _capture_streams(dev) == _capture_streams(dev)  # the default stream's pair, drawn once
    own = torch.cuda.Stream(dev)
    with torch.cuda.stream(own):  # a concurrent candidate's stream: warm up and capture on it
        assert _capture_streams(dev) == (own, own)


def test_seeded_builds_in_several_threads_get_their_seeds_weights() -> None:
    import threading

    space = NB201Space(C=4, N=1)

    def build(seed: int):
        return seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=10), seed)

    expected = {seed: build(seed).state_dict() for seed in range(4)}
    got: dict[int, dict] = {}

    wrong: list[tuple[int, str]] = []

    def worker(seed: int) -> None:
        for _ in range(5):  # overlapping builds: the global RNG is shared between threads
            got[seed] = build(seed).state_dict()
            wrong.extend((seed, k) for k, v in expected[seed].items() if not torch.equal(got[seed][k], v))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [0, 1, 2, 3] and not wrong, wrong[:3]
    first = next(k for k, v in expected[0].items() if v.is_floating_point() and v.numel() > 1)
    assert not torch.equal(expected[0][first], expected[1][first])  # the seeds do differ


def test_training_on_fewer_than_two_images_is_a_clear_data_error() -> None:
    space = NB201Space(C=4, N=1)
    model = seeded_build(lambda: space.build(ARCH, in_channels=1, num_classes=3), 0)
    x, y = torch.randn(1, 1, 8, 8), torch.zeros(1, dtype=torch.long)
    with pytest.raises(DataError, match="at least 2 images, each with a label: got 1 images and 1 labels"):
        train(model, x, y, None, None, TrainConfig(epochs=1), num_classes=3, device="cpu")
    with pytest.raises(DataError, match="got 0 images"):
        train(model, x[:0], y[:0], None, None, TrainConfig(epochs=1), num_classes=3, device="cpu")


def test_the_warm_up_rises_to_the_peak_at_its_end_and_one_step_of_it_is_still_one() -> None:
    """Over ``warmup`` the rate reached the peak a step early (step warmup - 1 and warmup both at
    the peak), and a warm-up of one step (an epoch of one step, or half an epoch of two) ran its
    first step at the full rate (a review, 2026-12-06)."""
    from budgetnas.train.trainer import _lr_at

    for warmup in (1, 2, 5):
        rates = [_lr_at(s, 20, warmup, 0.4) for s in range(warmup + 2)]
        assert all(a < b for a, b in zip(rates[:warmup + 1], rates[1:warmup + 1]))  # rising to ...
        assert rates[warmup] == 0.4 and rates[warmup + 1] < 0.4  # ... the peak, where the decay starts
        assert rates[0] == pytest.approx(0.4 / (warmup + 1))
    assert _lr_at(0, 20, 0, 0.4) == 0.4  # no warm-up: the peak at once


def test_warm_up_imports_what_the_first_optimizer_would_once() -> None:
    """The first optimizer of a process imports torch._dynamo (3.2 s here), which a resumed
    session billed to its first trial; warm_up pays it before anything is timed, once."""
    import subprocess
    import sys

    code = ("import sys; from budgetnas.train import warm_up; from budgetnas.train.trainer import _WARM; "
            "before = 'torch._dynamo' in sys.modules; warm_up('cpu'); warm_up(); "
            "print(before, 'torch._dynamo' in sys.modules, sorted(_WARM))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "['import']"], out  # (a CPU needs nothing more)


@pytest.mark.gpu
def test_warm_up_sets_up_a_cuda_device() -> None:
    from budgetnas.train import warm_up
    from budgetnas.train.trainer import _WARM

    warm_up("cuda")
    assert "cuda" in _WARM and torch.cuda.is_initialized()


# -- the optimisation protocol, one step at a time -------------------------------------------------
# One training step of a tiny network (a conv with bias, BatchNorm, a linear layer: 4-D, 2-D and 1-D
# parameters) on one full batch, with no warm-up, crop or flip: the step runs at exactly the peak
# rate, lr * 64 / 256, on exactly these images (in a shuffled order, which a mean loss and
# BatchNorm's batch statistics do not see, up to float rounding).
_N, _CLASSES = 64, 3


def _protocol_data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(_N, 1, 6, 6, generator=gen), torch.randint(0, _CLASSES, (_N,), generator=gen)


def _tiny() -> torch.nn.Module:
    model = seeded_build(lambda: torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=True), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, _CLASSES)), 0)
    with torch.no_grad():  # (confident logits: smoothed and plain cross-entropy differ clearly)
        model[5].weight.mul_(20)
    return model


def _one_step(**kw):
    """(the weights before, the weights after, the result) of one step with TrainConfig(**kw)."""
    x, y = _protocol_data()
    model = _tiny()
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    cfg = TrainConfig(**{"epochs": 1, "batch_size": _N, "lr": 0.4, "warmup_epochs": 0, "crop_padding": 0,
                         "hflip": False, **kw})
    result = train(model, x, y, None, None, cfg, num_classes=_CLASSES, seed=0, device="cpu")
    after = {k: p.detach().clone() for k, p in result.model.named_parameters()}
    return before, after, result


def _hand_gradients(label_smoothing: float) -> dict[str, torch.Tensor]:
    """The gradient of the batch's mean cross-entropy at the initial weights, computed here."""
    x, y = _protocol_data()
    model = _tiny().train()
    F = torch.nn.functional
    F.cross_entropy(model(x), y, label_smoothing=label_smoothing).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


PEAK = 0.4 * _N / 256  # the rate of the one step (lr scaled to the batch; no warm-up)


def test_the_protocol_defaults_are_nb201s_with_label_smoothing_and_clipping() -> None:
    """The documented protocol: SGD, momentum 0.9 (Nesterov), weight decay 5e-4, lr 0.1 at batch
    256, label smoothing 0.1, gradients clipped to norm 5."""
    cfg = TrainConfig()
    assert (cfg.momentum, cfg.weight_decay, cfg.lr, cfg.label_smoothing, cfg.grad_clip) == (0.9, 5e-4, 0.1, 0.1, 5.0)


def test_training_minimises_the_label_smoothed_cross_entropy() -> None:
    """The loss trained on is cross-entropy with label smoothing 0.1 (the default): the epoch's
    training loss is it at the initial weights, and the step follows its gradient, not the
    unsmoothed one's."""
    x, y = _protocol_data()
    with torch.no_grad():
        logits = _tiny().train()(x)
    F = torch.nn.functional
    smoothed, plain = F.cross_entropy(logits, y, label_smoothing=0.1), F.cross_entropy(logits, y)
    assert abs(float(smoothed) - float(plain)) > 0.01  # (the two are told apart here)
    before, after, result = _one_step(momentum=0.0, weight_decay=0.0, grad_clip=None)
    assert result.curve[0].train_loss == pytest.approx(float(smoothed), rel=1e-5)
    grads = _hand_gradients(0.1)
    for k in before:  # (plain SGD: the step is -peak * gradient)
        torch.testing.assert_close(after[k] - before[k], -PEAK * grads[k], rtol=1e-4, atol=1e-6)


def test_gradients_are_clipped_to_grad_clip_before_the_step() -> None:
    """With ``grad_clip`` below the gradient's norm the step is the gradient scaled to that norm
    (clip_grad_norm_ over all parameters together), so one bad batch cannot throw the weights."""
    grads = _hand_gradients(0.1)
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()])))
    clip = 0.01
    assert norm > 10 * clip  # (the clipping is active here)
    before, after, _ = _one_step(momentum=0.0, weight_decay=0.0, grad_clip=clip)
    step_norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(after[k] - before[k])
                                                            for k in before])))
    assert step_norm == pytest.approx(PEAK * clip, rel=1e-3)
    for k in before:  # (the same direction: all of the gradient scaled by one factor)
        torch.testing.assert_close(after[k] - before[k], -PEAK * grads[k] * clip / norm, rtol=1e-3, atol=1e-6)
    _, unclipped, _ = _one_step(momentum=0.0, weight_decay=0.0, grad_clip=None)  # (off: the whole gradient)
    for k in before:
        torch.testing.assert_close(unclipped[k] - before[k], -PEAK * grads[k], rtol=1e-4, atol=1e-6)


def test_weight_decay_applies_to_weights_not_to_batchnorm_or_biases() -> None:
    """Weight decay shrinks the convolution's and the classifier's weights (>= 2-D) and leaves the
    1-D parameters alone: BatchNorm's weight and bias, the convolution's and classifier's biases."""
    wd = 0.05
    before, plain, _ = _one_step(momentum=0.0, weight_decay=0.0, grad_clip=None)
    _, decayed, _ = _one_step(momentum=0.0, weight_decay=wd, grad_clip=None)
    one_d = [k for k, p in before.items() if p.ndim == 1]
    assert sorted(one_d) == ["0.bias", "1.bias", "1.weight", "5.bias"]
    for k, p in before.items():
        if p.ndim == 1:  # (the same gradient step, bit for bit: no decay term at all)
            assert torch.equal(decayed[k], plain[k]), k
        else:  # (SGD adds wd * w to the gradient: the step moves lr * wd * w further)
            torch.testing.assert_close(decayed[k] - plain[k], -PEAK * wd * p, rtol=1e-3, atol=1e-7)


def test_momentum_is_nesterovs() -> None:
    """SGD with Nesterov momentum: the first step (buffer = gradient) moves by the gradient plus
    momentum times the buffer, (1 + 0.9) times plain SGD's step; classical momentum's first step
    is plain SGD's."""
    before, plain, _ = _one_step(momentum=0.0, weight_decay=0.0, grad_clip=None)
    _, nesterov, _ = _one_step(momentum=0.9, weight_decay=0.0, grad_clip=None)
    for k in before:
        torch.testing.assert_close(nesterov[k] - before[k], 1.9 * (plain[k] - before[k]), rtol=1e-4, atol=1e-7)
