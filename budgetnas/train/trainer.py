"""Train one candidate network, reading top to bottom.

The whole (already normalised) dataset is moved to the device once; each step indexes a batch,
augments it with batched tensor ops (random crop by padding + per-sample shifts, optional
horizontal flip), and runs SGD with Nesterov momentum, label smoothing, a linear warm-up and a
cosine schedule. On CUDA it uses bf16 autocast and channels_last. There is no per-sample Python
work and no DataLoader. Every epoch it evaluates on the validation tensors and reports accuracy,
balanced accuracy and macro-F1 to an optional callback, which may stop the run (pruning).

On CUDA the training step (forward, backward, gradient clipping, fused SGD) is captured once in
a CUDA graph and replayed: one launch per step instead of ~1,000, which is what small NAS
networks are bound by (``step_mode``). The batch is indexed and augmented before the replay and
copied into the graph's static input; the learning rate lives in a device tensor that the
captured optimizer reads, so the schedule needs no re-capture. Where capture is impossible (the
CPU, a failed capture) the same step runs eagerly, and the log says so. On CUDA both modes use
the same kernels (fused SGD with a tensor learning rate, autocast without its weight cache) and
drop the last partial batch (static shapes; every device drops it), so eager and graph
training follow the same trajectory.

``fuse=True`` also compiles the forward pass and the loss with ``torch.compile`` (inductor), and so
the backward pass: elementwise layers (BatchNorm's normalisation, ReLU, the node sums) are fused
into fewer kernels, which cuts the memory traffic that bounds these networks (see
``benchmarks/roofline.py``). In graph mode the compiled kernels are captured like any others. A
compilation costs seconds to minutes per network, so it pays only for long training; when it
fails (no C++ compiler or Triton, an op inductor cannot handle) the candidate trains uncompiled
and the log says why.

Randomness comes only from ``seed``: an explicit ``torch.Generator`` drives shuffling and
augmentation, and :func:`seeded_build` initialises weights inside ``torch.random.fork_rng`` so
the global RNG is left as it was. On the CPU two runs with the same seed are bit-for-bit equal;
on CUDA, cuDNN's algorithm choice and bf16 make them equal within a small tolerance.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import math
import statistics
import threading
import time
import types
from collections.abc import Callable, Sequence
from contextlib import nullcontext as _nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from budgetnas.errors import ConfigError, DataError, TrialFailed, first_line
from budgetnas.train.checkpoint import Checkpointer

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
STEP_MODES = ("auto", "eager", "graph")
MAX_LR = 1e30  # above it, SGD steps overflow float32 (scaled by batch size up to 1e8 images)
# What a training computes, as a version: bumped on any change that alters the results of the same
# cell, data, settings and seed, so that a study never ranks trials of two trainers together (a
# search-core review, 2026-12-06: a resumed study mixed both warm-ups, and its cache served the
# older one's results). Each version says what changed from the one before.
TRAINER_VERSION = 3
TRAINER_CHANGES = {2: "the learning-rate warm-up starts at peak/(warm-up+1) and reaches the peak a step later "
                      "(2026-12-06)",
                   3: "the last partial batch of an epoch is dropped on every device, as on CUDA, not trained as a "
                      "full step of a few images (2026-12-07)"}
TIME_LIMIT_MARGIN = 0.03  # of a time limit, kept for what follows the last step (the caller's test, saving)
# Evaluation batch sizes: 1024 images fill a GPU; on a CPU a batch is fastest when its activations
# stay in cache, about this many values for the stem's output (benchmarks/eval_speed.py, 2026-12-06,
# 2 cores, summed over the one-op cells: 64 images a batch were the fastest for NB201 C=16 at 28 px,
# 256 and 512 for C=8 at 16 px; 1024, the default before, took 1.7x and 1.4x as long).
EVAL_BATCH_CUDA = 1024
EVAL_CPU_VALUES = 2 ** 20
_CAPTURE_LOCK = threading.Lock()
log = logging.getLogger("budgetnas")
_SAID_EAGER: set[str] = set()  # device types for which the fallback from step_mode "graph" was logged
_WARM: set[str] = set()  # "import", and the CUDA devices warm_up set up, in this process


def warm_up(device: torch.device | str | None = None) -> None:
    """Pay, once per process and before anything is timed, what PyTorch's first optimizer pays:
    its ``__init__`` imports ``torch._dynamo`` (3.2 s on this 2-core CPU, torch 2.13, measured
    2026-12-07), host time the device is idle for. A search that had probed before (a resumed
    session) billed it to its first trial as device seconds, 3-4x the trial's epochs, and its cost
    model, learning from that trial, forecast every later trial dearer: a budget bought 3 trials
    where a run straight through bought 13 (a kill-and-resume review, 2026-12-07). On a CUDA
    ``device``, its context and the convolution libraries' first use too (set-up, not any
    trial's cost; GPU timing of it pending a GPU run)."""
    if "import" not in _WARM:
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        _WARM.add("import")
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda" and str(dev) not in _WARM:
        x = torch.randn(2, 3, 8, 8, device=dev, requires_grad=True)
        w = torch.randn(4, 3, 3, 3, device=dev, requires_grad=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            F.conv2d(x, w, padding=1).float().sum().backward()
        torch.cuda.synchronize(dev)
        _WARM.add(str(dev))


@dataclass(frozen=True)
class TrainConfig:
    """How one candidate is trained. ``lr`` is the peak rate at batch 256, scaled linearly.

    NAS-Bench-201's protocol (SGD, Nesterov momentum 0.9, weight decay 5e-4, lr 0.1 at batch 256,
    cosine to zero stepped every iteration, crop with padding and flips) with these differences:
    label smoothing 0.1; a linear warm-up of ``warmup_epochs`` (at most half of all steps);
    gradients clipped to norm ``grad_clip``; no weight decay on 1-D parameters (BatchNorm's
    weights and biases, the classifier's bias); the crop pads with the normalised mean (0), not
    black; the last partial batch of each epoch is dropped (each image is seen in other epochs).
    """

    epochs: int = 10
    batch_size: int | None = None  # None: per device, see resolved_batch_size
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    grad_clip: float | None = 5.0
    crop_padding: int | None = None  # None: resolution // 8 (4 px at 32x32); 0 turns cropping off
    hflip: bool = False
    eval_batch_size: int | None = None  # None: by device and network (eval_batch_size)
    step_mode: str = "auto"  # "auto": a CUDA graph on CUDA, eager elsewhere; "eager"; "graph"
    fuse: bool = False  # compile forward + loss (and backward) with torch.compile: fused kernels

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 2):
            # (BatchNorm cannot normalise a batch of one image where a feature map is 1x1, as the
            # last stage's is at 4 px: every trial failed with torch's "Expected more than 1 value
            # per channel"; and one image is a noisy step anyway)
            raise ConfigError(f"batch_size must be an integer of at least 2 (BatchNorm normalises over a batch) "
                              f"or None (auto), got {self.batch_size!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if self.lr > MAX_LR:  # (1e40 overflowed inside the optimizer with an unhelpful RuntimeError)
            raise ConfigError(f"lr must be at most {MAX_LR:g}, got {self.lr!r}: steps this large "
                              "overflow float32 in the optimizer; 0.1 (for batch 256) is usual")
        if self.step_mode not in STEP_MODES:
            raise ConfigError(f"step_mode must be one of {', '.join(STEP_MODES)}, got {self.step_mode!r}")
        if not isinstance(self.fuse, bool):
            raise ConfigError(f"fuse must be True or False, got {self.fuse!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        for name in ("weight_decay", "warmup_epochs"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):  # (NaN passed, and failed later as a "diverged" loss)
                raise ConfigError(f"{name} must be a non-negative number, got {v!r}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1) (0.9 is usual; 0 turns it off), got {self.momentum!r}")
        if self.grad_clip is not None and not (self.grad_clip >= 0 and math.isfinite(self.grad_clip)):
            raise ConfigError(f"grad_clip must be a positive number, or 0 or None to turn clipping off, "
                              f"got {self.grad_clip!r}")
        if self.eval_batch_size is not None and (isinstance(self.eval_batch_size, bool)
                                                 or not isinstance(self.eval_batch_size, int) or self.eval_batch_size < 1):
            raise ConfigError(f"eval_batch_size must be a positive integer or None (by device), "
                              f"got {self.eval_batch_size!r}")
        if self.crop_padding is not None and (isinstance(self.crop_padding, bool)
                                              or not isinstance(self.crop_padding, int) or self.crop_padding < 0):
            raise ConfigError(f"crop_padding must be a non-negative integer (0 turns cropping off) or None "
                              f"(resolution // 8), got {self.crop_padding!r}")

    def resolved_batch_size(self, n: int, device_type: str = "cpu") -> int:
        """The batch size for ``n`` training images: ``batch_size`` if set (at most ``n``), else
        a power of two giving about 16 steps per epoch or more, from 32 up to 256 on the CPU and
        up to 512 on CUDA, where a small network needs bigger batches to fill the GPU. The peak
        learning rate scales linearly with it (``lr`` is for batch 256), after a warm-up."""
        if self.batch_size is not None:
            return min(self.batch_size, n)
        cap = 512 if device_type == "cuda" else 256
        return min(cap, max(32, 2 ** int(math.log2(max(n, 2) / 16))), n)



@dataclass
class EpochRecord:
    """Validation metrics after one epoch of training."""

    epoch: int
    train_loss: float
    metrics: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its learning curve and the device time."""

    model: nn.Module
    curve: list[EpochRecord] = field(default_factory=list)
    device_seconds: float = 0.0
    stopped_early: bool = False
    device: str = "cpu"
    step_mode: str = "eager"  # what ran: "eager" or "graph"
    fused: bool = False  # whether the compiled (fused) forward and backward ran
    # of device_seconds, what compiling the fused step (fuse=True) took once, before the first
    # step: a fixed cost per training, which a cost per image must not learn
    compile_seconds: float = 0.0
    batch_size: int = 0
    resumed_from: tuple[int, int] | None = None  # (epoch, step in epoch) of a restored checkpoint
    # (steps trained, steps planned) when a time limit shortened the schedule, else None
    shortened: tuple[int, int] | None = None

    @property
    def final(self) -> dict[str, float]:
        return self.curve[-1].metrics if self.curve else {}


class Preempted(Exception):
    """Training stopped on request (SIGTERM/SIGINT) after saving a checkpoint."""

    def __init__(self, epoch: int, step: int, saved: bool) -> None:
        super().__init__(f"stopped on request in epoch {epoch} at step {step}"
                         + (" (checkpoint saved)" if saved else ""))
        self.epoch, self.step, self.saved = epoch, step, saved


def eval_batch_size(device_type: str, model: nn.Module | None = None, image_shape: Sequence[int] = ()) -> int:
    """The batch size evaluation runs at by default: 1024 on CUDA; elsewhere a power of two
    from 32 to 1024 that keeps the output of ``model``'s first convolution for a batch of images
    of ``image_shape`` (channels, height, width) near ``EVAL_CPU_VALUES`` values (64 without them)."""
    if device_type == "cuda":
        return EVAL_BATCH_CUDA
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None) if model is not None else None
    if conv is None or len(image_shape) < 3:
        return 64
    per_image = conv.out_channels * image_shape[-1] * image_shape[-2]
    return int(min(1024, max(32, 2 ** math.floor(math.log2(max(EVAL_CPU_VALUES / per_image, 1))))))


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; an unavailable device is an error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r} is not supported: budgetnas trains on 'cpu' or 'cuda' "
                          "(or 'cuda:N'); use one of those or 'auto'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but no CUDA GPU is visible; use 'cpu' or 'auto'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA GPUs "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return dev


_BUILD_LOCK = threading.Lock()


def seeded_build(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Call ``build`` with the global torch RNG seeded, restoring it afterwards.

    The global RNG is shared by all threads: builds are serialised, so candidates built at the
    same time in several threads still get exactly the weights their seed gives. Networks are
    built on the CPU, so only the CPU generator is seeded (``torch.manual_seed`` would also reseed,
    and not restore, every CUDA generator).
    """
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        return build()


def _augment(x: torch.Tensor, pad: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding, per-sample shift) and optional flip, as batched tensor ops."""
    b, c, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=x.device)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bidx = torch.arange(b, device=x.device)[:, None, None, None]
        cidx = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[bidx, cidx, rows, cols]
    if hflip:
        flip = torch.rand(b, generator=gen, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def _inject(fault: str) -> None:
    if fault == "oom":
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected fault)")
    if fault != "nan":
        raise ConfigError(f"unknown fault {fault!r} to inject; use 'nan' or 'oom'")


def _lr_at(step: float, total: int, warmup: int, peak: float) -> float:
    if step < warmup:  # (step 0 at peak / (warmup + 1), rising to the peak at step ``warmup``, where
        # the decay starts: over warmup / (warmup + 1) it reached the peak a step early, and a
        # warm-up of one step was none; a review, 2026-12-06)
        return peak * (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


class _Schedule:
    """The learning rate at each step: a linear warm-up, then a cosine decay over ``total`` steps.

    :meth:`replan` ends the schedule sooner, at ``end``, when a time limit cannot pay for all of
    it: from the step it is called at, the rest of the schedule is played faster, so that it ends
    at ``end`` instead of ``total``. The rate moves on continuously from its current value, a
    warm-up still reaches the peak (shorter), and the decay still reaches zero at the new end: a
    model stopped at a high rate mid-schedule is much worse than one annealed over fewer steps
    (Li et al., "Budgeted training", ICLR 2020). Re-planning again composes, later as well as
    sooner (up to ``total``): it only changes how fast the rest is played.
    """

    def __init__(self, total: int, warmup: int, peak: float) -> None:
        self.total, self.warmup, self.peak = total, warmup, peak
        # (the step it was shortened at, where the schedule had got to then, the new end)
        self.cut: tuple[int, float, int] | None = None

    @property
    def end(self) -> int:
        return self.cut[2] if self.cut is not None else self.total

    def _played(self, step: int) -> float:
        """The point of the unshortened schedule that ``step`` plays."""
        if self.cut is None or step < self.cut[0]:
            return float(step)
        s0, v0, end = self.cut
        return v0 + (step - s0) * (self.total - v0) / max(1, end - s0)

    def lr(self, step: int) -> float:
        rate = _lr_at(self._played(step), self.total, self.warmup, self.peak)
        # (a played point between warm-up steps would pass the peak in _lr_at's warm-up: capped)
        return rate if self.cut is None else min(self.peak, rate)

    def replan(self, step: int, end: int) -> None:
        """End the schedule at ``end`` (at most ``total``), continuing from ``step``."""
        end = min(max(step, end), self.total)
        if end != self.end:
            self.cut = (step, self._played(step), end)

    def state(self) -> list[float] | None:
        return list(self.cut) if self.cut is not None else None

    def load(self, state: list[float] | None) -> None:
        if state is not None:
            s0, v0, end = state
            self.cut = (int(s0), float(v0), int(end))


def _loss_fn(model: nn.Module, label_smoothing: float, cuda: bool,
             fuse: bool) -> tuple[Callable[..., torch.Tensor], types.CodeType | None]:
    """The training loss of ``model`` on a batch, compiled by inductor when ``fuse``; with the code
    object dynamo caches the compilation on (to free it with :func:`torch._dynamo.reset_code`)."""
    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda, cache_enabled=False):
            return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    if not fuse:
        return loss, None
    # Dynamo keeps what it compiled on the code object it traced, at most `recompile_limit` (8)
    # versions of it. Every candidate of a search would share `loss.__code__`, so from the ninth
    # network on it would stop compiling (or fail, with fullgraph). A copy of the code object per
    # network gives each its own cache, which `_Step.close` frees; the copied globals take the
    # names dynamo adds for the compiled code, so the module's own globals do not grow.
    code = loss.__code__.replace()
    own = types.FunctionType(code, dict(loss.__globals__), loss.__name__, None, loss.__closure__)
    return torch.compile(own, fullgraph=True, dynamic=False), code


def _clear_shape_env_caches() -> None:
    """Let go of the symbolic-shape state of finished compilations.

    Inductor's code generation (a compilation that misses its on-disk cache) memoises ShapeEnv
    methods in class-level ``lru_cache``s, some unbounded, keyed by the ShapeEnv itself: each
    compiled network's ShapeEnv, and the fake tensors it tracks, stayed alive for the rest of the
    process (measured with torch 2.13 on the CPU, 2026-12-01: +10 fake tensors per compiled
    3-layer network, growing without bound). The caches are pure memoisation, so clearing them
    only costs a compilation running in another thread some recomputation.
    """
    try:
        from torch.fx.experimental.symbolic_shapes import ShapeEnv
    except ImportError:  # pragma: no cover - a torch without it has nothing to clear
        return
    for member in vars(ShapeEnv).values():
        clear = getattr(member, "cache_clear", None)
        if callable(clear):
            clear()


_STREAMS: dict[int, tuple[torch.cuda.Stream, torch.cuda.Stream]] = {}


def _capture_streams(dev: torch.device) -> tuple[torch.cuda.Stream, torch.cuda.Stream]:
    """The (warm-up, capture) streams for a graph captured now, under ``_CAPTURE_LOCK``.

    ``torch.cuda.Stream()`` hands out streams from a pool of 32 per device, round robin, so two
    new streams per capture would, after ~16 trials, give one thread's capture the stream another
    candidate is training on: that thread's kernels would be recorded into this graph. So a
    candidate that already trains on a stream of its own (concurrent candidates do) warms up and
    captures on that stream, and one on the default stream uses a pair drawn once per device.
    """
    current = torch.cuda.current_stream(dev)
    if current != torch.cuda.default_stream(dev):
        return current, current
    index = current.device_index
    if index not in _STREAMS:
        _STREAMS[index] = (torch.cuda.Stream(dev), torch.cuda.Stream(dev))
    return _STREAMS[index]


class _Step:
    """One training step on a fixed-size batch, eager or replayed from a CUDA graph.

    ``run(xb, yb, lr)`` trains on the batch and adds ``loss * batch`` to ``loss_sum`` on the
    device (no host sync). In graph mode the batch is copied into static tensors and the
    captured step replayed; capture happens on the first call, after a few warm-up steps on a
    side stream whose effect on the weights, buffers and optimizer state is undone, so the
    captured run starts from exactly the state the eager one would. With ``fuse`` the first call
    compiles the loss (one step, undone the same way); a failed compilation leaves the step
    uncompiled.
    """

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, config: TrainConfig,
                 loss_sum: torch.Tensor, lr: torch.Tensor | None, dev: torch.device, graph: bool,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.model, self.opt, self.config, self.loss_sum, self.lr, self.dev = model, opt, config, loss_sum, lr, dev
        self.clock = clock  # (the training's clock: a fair share of the device's when candidates share it)
        self.cuda = dev.type == "cuda"
        self.mode = "graph" if graph else "eager"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: tuple[torch.Tensor, torch.Tensor] | None = None
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.loss, self.code = _loss_fn(model, config.label_smoothing, self.cuda, config.fuse)
        self.fused = False  # True once the compiled loss has run
        self.compiled = not config.fuse  # nothing to compile
        self.compile_seconds = 0.0  # what _compile took (its one undone step included)

    def _body(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        loss = self.loss(xb, yb)
        loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.params, self.config.grad_clip, foreach=self.cuda or None)
        self.opt.step()
        self.loss_sum.add_(loss.detach().float() * yb.shape[0])

    def set_lr(self, value: float) -> None:
        if self.lr is not None:
            self.lr.fill_(value)  # read by the fused optimizer on the device: no re-capture
        else:
            for group in self.opt.param_groups:
                group["lr"] = value

    def run(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if not self.compiled:
            self._compile(xb, yb)
        if self.mode == "eager":
            self.opt.zero_grad(set_to_none=True)
            self._body(xb, yb)
            return
        if self.graph is None:
            self._capture(xb, yb)
            if self.mode == "eager":  # the capture failed: this run continues eagerly
                self.run(xb, yb)
                return
        sx, sy = self.static  # type: ignore[misc]
        sx.copy_(xb)
        sy.copy_(yb)
        with torch.cuda.device(self.dev):  # a graph replays on the current device's stream
            self.graph.replay()  # type: ignore[union-attr]

    def _compile(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """Compile the fused forward and backward with one step whose effect is undone."""
        self.compiled = True
        # (under the capture lock: compiling runs and times kernels, which must not happen
        # inside another thread's capture; timed on the training's clock once the lock is held, so
        # that neither the wait for another candidate's compilation nor more than this training's
        # share of the device counts: a wall-clock time had exceeded the share billed, and the
        # cost model, given the bill less it, learnt nothing)
        with _CAPTURE_LOCK:
            t0 = self.clock()
            try:
                self._compile_timed(xb, yb)
            finally:
                self.compile_seconds = self.clock() - t0

    def _compile_timed(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        with torch.cuda.device(self.dev) if self.cuda else _nullcontext():
            saved = self._snapshot()
            try:
                self.opt.zero_grad(set_to_none=True)
                self._body(xb, yb)
                if self.cuda:
                    torch.cuda.current_stream(self.dev).synchronize()
            except torch.cuda.OutOfMemoryError:
                self._restore(*saved)
                raise
            except Exception as e:  # noqa: BLE001 - any failure to compile: train uncompiled
                self._restore(*saved)
                self._forget_compiled()
                self.loss, _ = _loss_fn(self.model, self.config.label_smoothing, self.cuda, False)
                first = first_line(e)
                log.warning("torch.compile failed (%s: %s); this candidate trains without fused kernels",
                            type(e).__name__, first[:300])
                return
            self._restore(*saved)
        # From here on only the code compiled now runs: a later call whose guards failed would
        # run that step uncompiled rather than compile again, unlocked and without the fallback.
        self.loss, self.fused = torch._dynamo.run(self.loss), True

    def _forget_compiled(self) -> None:
        if self.code is not None:
            torch._dynamo.reset_code(self.code)  # dynamo's cache entry holds itself: free it
            self.code = None
            _clear_shape_env_caches()

    def _capture(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        # One capture at a time in this process (concurrent candidates capture from several
        # threads); each on its own stream, in thread-local mode, so the other threads' work
        # (allocations, syncs) neither breaks this capture nor is recorded into it.
        with _CAPTURE_LOCK, torch.cuda.device(self.dev):
            self._capture_locked(xb, yb)

    def _capture_locked(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        saved = self._snapshot()
        sx = torch.empty_like(xb).copy_(xb)
        sy = yb.clone()
        try:
            side, capture = _capture_streams(self.dev)
            side.wait_stream(torch.cuda.current_stream(self.dev))
            with torch.cuda.stream(side):  # cuDNN/cuBLAS pick algorithms, the allocator warms up
                for _ in range(3):
                    self.opt.zero_grad(set_to_none=True)
                    self._body(sx, sy)
            torch.cuda.current_stream(self.dev).wait_stream(side)
            self._restore(*saved)
            graph = torch.cuda.CUDAGraph()
            # (the outer stream context restores the current stream even if capture_begin fails)
            with torch.cuda.stream(capture), torch.cuda.graph(graph, stream=capture,
                                                              capture_error_mode="thread_local"):
                self._body(sx, sy)
        except torch.cuda.OutOfMemoryError:  # the search's retry at half the batch size handles it
            torch.cuda.synchronize(self.dev)  # the warm-up's stream too, before undoing its steps
            self._restore(*saved)
            raise
        except RuntimeError as e:  # e.g. an op that cannot be captured; train eagerly instead
            torch.cuda.synchronize(self.dev)
            self._restore(*saved)
            self.mode = "eager"
            # An error inside the capture makes torch.cuda.graph's __exit__ end the capture, which
            # then fails too ("operation failed due to a previous error during capture"): that
            # second error is what arrives here, the cause is its __context__.
            cause = e.__context__ if isinstance(e.__context__, Exception) else None
            first = first_line(e) if cause is None else f"{first_line(cause)}; then: {first_line(e)}"
            log.warning("CUDA graph capture failed (%s); this candidate trains eagerly", first)
            return
        self.graph, self.static = graph, (sx, sy)

    def _snapshot(self) -> tuple[dict[str, torch.Tensor], dict[int, dict[str, torch.Tensor]], torch.Tensor]:
        saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        saved_opt = {id(p): {k: v.detach().clone() for k, v in self.opt.state[p].items() if torch.is_tensor(v)}
                     for p in self.params if p in self.opt.state}
        return saved, saved_opt, self.loss_sum.detach().clone()

    @torch.no_grad()
    def _restore(self, saved: dict[str, torch.Tensor], saved_opt: dict[int, dict[str, torch.Tensor]],
                 saved_loss: torch.Tensor) -> None:
        """Undo warm-up steps in place (a graph must see the same tensors, not copies); the
        gradients are dropped (in graph mode they are then allocated inside the graph's pool)."""
        for k, v in self.model.state_dict().items():
            v.copy_(saved[k])
        for p in self.params:
            for k, v in self.opt.state.get(p, {}).items():
                if torch.is_tensor(v):
                    before = saved_opt.get(id(p), {}).get(k)
                    # A momentum buffer the warm-up created starts at zero: SGD's first step then
                    # sets it to the gradient, exactly what a fresh buffer gets.
                    v.copy_(before) if before is not None else v.zero_()
        self.loss_sum.copy_(saved_loss)
        self.opt.zero_grad(set_to_none=True)

    def close(self) -> None:
        """Free the graph's memory pool (and the gradients that live in it) and the compiled code."""
        self.graph, self.static = None, None
        self.opt.zero_grad(set_to_none=True)
        self._forget_compiled()


def train(
    model: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor | None,
    val_y: torch.Tensor | None,
    config: TrainConfig,
    *,
    num_classes: int,
    seed: int = 0,
    device: str | torch.device = "auto",
    on_epoch: Callable[[EpochRecord], bool] | None = None,
    inject_fault: str | None = None,
    checkpoint: Checkpointer | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_resume: Callable[[list[EpochRecord]], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    time_limit: float | None = None,
) -> TrainResult:
    """Train ``model`` on ``(train_x, train_y)``; evaluate on the validation set every epoch.

    ``train_x`` is a normalised float tensor ``(N, C, H, W)``; ``train_y`` int64 ``(N,)``.
    ``on_epoch`` receives each :class:`EpochRecord` and returns True to stop early.
    A NaN or infinite loss raises :class:`TrialFailed`. ``inject_fault`` ("nan" or "oom") makes the
    first step fail that way, through the same code paths as a real failure (for tests and drills).

    With a ``checkpoint``, the state (weights, optimizer, RNG, position in the epoch, curve) is saved
    at every epoch end and every ``checkpoint.interval`` seconds, and a run that finds a valid
    checkpoint continues from it (``on_resume`` gets the curve so far). ``should_stop`` is polled
    before every step; when it returns True the state is saved and :class:`Preempted` is raised.
    ``clock`` measures the device seconds reported (a fair-share clock when several candidates
    train at once on one device).

    ``time_limit`` (seconds on ``clock`` for this call) makes the schedule end in time when the
    device runs slower than expected (another process on it): the pace of the steps (the median
    over about the last epoch) is read a few times per epoch, and when the steps left would not
    fit in the limit (less ``TIME_LIMIT_MARGIN``) the schedule is shortened to the steps that do,
    annealing the learning rate to zero over them (see :class:`_Schedule`), never below one
    epoch; if the device speeds up again, it is lengthened back (up to the whole schedule).
    Training then ends mid-epoch; that epoch's record covers the steps it ran, and
    ``result.shortened`` says how many of how many. A shortened schedule is kept in the
    checkpoint; resumed without a limit it is lengthened to the whole schedule again, with one,
    to what that limit allows. The pace counts training steps only: with validation data given,
    each epoch's evaluation comes on top of the limit (the search's final training, the one
    call given a limit, has none).

    Example::

        result = train(model, x, y, vx, vy, TrainConfig(epochs=3), num_classes=10, seed=0)
        result.final["accuracy"]
    """
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    if len(train_x) < 2 or len(train_x) != len(train_y):
        raise DataError(f"training needs at least 2 images, each with a label: got {len(train_x)} images and "
                        f"{len(train_y)} labels")
    if time_limit is not None and not time_limit < math.inf:
        time_limit = None  # (no limit; a NaN is none either)
    if cuda:
        torch.cuda.current_stream(dev).synchronize()
    start = clock()
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = model.to(dev, memory_format=fmt)
    x_all = train_x.to(dev, non_blocking=True)
    y_all = train_y.to(dev, non_blocking=True)
    n = x_all.shape[0]
    bs = config.resolved_batch_size(n, dev.type)
    # The last partial batch is dropped (every image is still seen, in another position, in the
    # other epochs): on CUDA (a graph replays one batch size) and when compiled (another shape is
    # another compilation) for static shapes, and on every device alike, as a batch of a few images
    # took a full learning-rate step and moved BatchNorm's running statistics just before each
    # epoch's evaluation: on the CPU, 1282 training images (a last batch of 2 at 256) scored 0.66 ±
    # 0.14 where 1280 scored 0.87 ± 0.05 (review H, 2026-12-07). A set smaller than one batch is
    # one batch of all of it.
    drop_last = n > bs
    steps_per_epoch = n // bs if drop_last else math.ceil(n / bs)
    total_steps = steps_per_epoch * config.epochs
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total_steps // 2)
    peak_lr = config.lr * bs / 256
    schedule = _Schedule(total_steps, warmup, peak_lr)
    pad = config.crop_padding if config.crop_padding is not None else x_all.shape[-1] // 8
    # What this training is beside its image count and epochs, kept in its checkpoints: one saved
    # by another (another seed, rate, network, or steps per epoch, as --fuse's dropped last batch
    # makes them on a CPU) is not resumed as if it were this one's (a review, 2026-12-06: another
    # seed resumed silently, another network failed with load_state_dict's raw error).
    plan = {"seed": int(seed), "steps_per_epoch": steps_per_epoch, "peak_lr": peak_lr, "warmup": warmup,
            "momentum": config.momentum, "weight_decay": config.weight_decay,
            "label_smoothing": config.label_smoothing, "grad_clip": config.grad_clip, "pad": pad,
            "hflip": bool(config.hflip), "labels": int((y_all.long() * torch.arange(1, n + 1, device=dev)).sum()),
            "weights": {k: list(v.shape) for k, v in model.state_dict().items()},
            # (the modules' kinds where they sit: two cells differing in a skip and a none edge have
            # the same weights, and one resumed the other's checkpoint unsaid: review H, 2026-12-07)
            "wiring": hashlib.sha256(" ".join(f"{k}:{type(m).__name__}:{getattr(m, 'wiring', '')}"
                                              for k, m in model.named_modules()).encode()).hexdigest()[:16]}

    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    lr_t = torch.tensor(peak_lr, device=dev, dtype=torch.float32) if cuda else None  # fused SGD reads fp32
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr_t if lr_t is not None else peak_lr, momentum=config.momentum, nesterov=config.momentum > 0,
        **({"fused": True} if cuda else {}),
    )
    gen = torch.Generator(device=dev).manual_seed(seed)
    result = TrainResult(model=model, device=str(dev), batch_size=bs)

    def fitting_end(step: int, left: float, pace: float) -> int:
        """Where the schedule ends for ``left`` seconds to pay for steps of ``pace`` seconds from
        ``step``: the steps that fit, never before the first epoch's end, nor after the whole's."""
        fits = step + max(0, math.floor(left / pace)) if pace > 0 else total_steps
        return min(max(fits, min(steps_per_epoch, total_steps)), total_steps)
    step, first_epoch, first_i, order, loss_sum = 0, 1, 0, None, torch.zeros((), device=dev)
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None and state.get("batch_size") != bs:
        state = None  # saved under another batch size (e.g. before an out-of-memory retry)
    if state is not None and (state.get("images", n), state.get("epochs", config.epochs)) != (n, config.epochs):
        # Another dataset or schedule: its shuffled order indexes other images, its step count
        # another learning-rate schedule (a checkpoint from before 2026-12-03 has neither: used).
        log.warning("checkpoint %s was saved training %s images for %s epochs, this run trains %d for %d: "
                    "training from the start", checkpoint.path, state.get("images"),  # type: ignore[union-attr]
                    state.get("epochs"), n, config.epochs)
        state = None
    if state is not None and (state.get("device_type", dev.type) != dev.type
                              or state["generator"].numel() != gen.get_state().numel()):
        # Saved on another kind of device: a CPU generator's state cannot seed a CUDA generator
        # (set_state raises), and a CPU run's momentum buffers are laid out for NCHW weights,
        # which CUDA's fused SGD refuses next to channels_last ones. Start again instead.
        log.warning("checkpoint %s was saved on %s, this run trains on %s: training from the start",
                    checkpoint.path, state.get("device_type", "another device"), dev.type)  # type: ignore[union-attr]
        state = None
    if state is not None and "plan" in state and state["plan"] != plan:  # (older checkpoints: none kept)
        differ = sorted(k for k in plan.keys() | state["plan"].keys() if plan.get(k) != state["plan"].get(k))
        log.warning("checkpoint %s was saved by another training (its %s differ from this one's): training "
                    "from the start", checkpoint.path, ", ".join(differ))  # type: ignore[union-attr]
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        ours = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        opt.load_state_dict(state["optimizer"])
        for group, hp in zip(opt.param_groups, ours):  # the saved state, this run's settings:
            group.update(hp)  # the captured optimizer must read this run's lr_t, not the
            # checkpoint's copy of it
        for p in model.parameters():  # fused SGD on CUDA needs each buffer laid out as its weight
            for k, v in list(opt.state.get(p, {}).items()):
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    opt.state[p][k] = torch.empty_like(p).copy_(v)
        gen.set_state(state["generator"].to(gen.get_state().device))
        step, first_epoch, first_i = state["step"], state["epoch"], state["i"]
        schedule.load(state.get("schedule"))
        was = schedule.end
        if time_limit is None:  # (a schedule shortened by another call's limit: this one has none)
            schedule.replan(step, total_steps)
        elif state.get("pace"):  # with one: to what this limit allows at the pace last measured (the
            # pace readings of this call re-plan it again once they are in, about an epoch on; left
            # to them alone, a schedule shortened by a tight limit and resumed under a generous one
            # stayed shortened when fewer steps than that were left: a review, 2026-12-06)
            schedule.replan(step, fitting_end(step, time_limit * (1 - TIME_LIMIT_MARGIN), state["pace"]))
        if schedule.end != was:  # (said: a rerun with more budget should know it got the whole schedule)
            log.info("resumed at step %d: its schedule ended after %d of %d steps, and %s it ends after %d",
                     step, was, total_steps, "with no time limit" if time_limit is None else "in this time limit",
                     schedule.end)
        order = state["order"].to(dev) if state["order"] is not None else None
        loss_sum.copy_(state["loss_sum"])
        result.curve = [EpochRecord(**r) for r in state["curve"]]
        result.resumed_from = (first_epoch, first_i)
        if on_resume is not None:
            on_resume(list(result.curve))

    graph = config.step_mode == "graph" or (config.step_mode == "auto" and cuda)
    if graph and not cuda:
        if config.step_mode == "graph" and dev.type not in _SAID_EAGER:  # (once: not for every trial)
            _SAID_EAGER.add(dev.type)
            log.info("CUDA graphs need a CUDA device; training on %s eagerly", dev)
        graph = False
    stepper = _Step(model, opt, config, loss_sum, lr_t, dev, graph, clock)

    def save(epoch: int, i: int, order: torch.Tensor | None) -> None:
        checkpoint.save({  # type: ignore[union-attr]
            "model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
            "step": step, "epoch": epoch, "i": i, "order": order, "loss_sum": loss_sum.clone(),
            "curve": [r.to_dict() for r in result.curve], "batch_size": bs, "device_type": dev.type,
            "images": n, "epochs": config.epochs, "schedule": schedule.state(), "plan": plan, "pace": paces[-1],
        })

    # The pace is read every `check_every` steps (on CUDA after a sync, since the host runs ahead
    # of the device): the median over the last 8 intervals, about an epoch. Recent, because a
    # device that keeps getting slower (more load) is missed by the average since the start
    # (measured on this CPU, 2026-12-06: 32 shortenings in one final training, each a few steps);
    # a median, and only once 8 intervals are in, because one slow moment (a GC pause, a
    # checkpoint save, a burst of load) would otherwise shorten the whole training for good
    # (found in review: one 20 s step among 1 s ones cut 40 steps to 10, using half the limit).
    # It starts after this call's first step: a graph capture or a compilation is no step's cost.
    check_every = max(1, steps_per_epoch // 8)
    marks: collections.deque[tuple[float, int]] = collections.deque(maxlen=9)  # (clock, step) per check
    told = [False]  # the first shortening is a warning, later re-plans debug
    paces: list[float | None] = [state.get("pace") if state is not None else None]  # the last pace read

    def fit_schedule() -> None:
        if cuda:
            torch.cuda.current_stream(dev).synchronize()
        now = clock()
        marks.append((now, step))
        if len(marks) < marks.maxlen:  # type: ignore[operator]
            return
        pace = statistics.median((t1 - t0) / (s1 - s0) for (t0, s0), (t1, s1) in itertools.pairwise(marks))
        paces.append(pace)
        left = time_limit * (1 - TIME_LIMIT_MARGIN) - (now - start)  # type: ignore[operator]
        end = fitting_end(step, left, pace)
        # Sooner as soon as the steps planned do not fit; later only with room for 5 % more
        # (and a check's steps), so that noise in the pace does not move the end back and forth.
        if end < schedule.end or end > schedule.end + max(check_every, total_steps // 20):
            planned = schedule.end
            schedule.replan(step, end)
            (log.debug if told[0] or end > planned else log.warning)(
                "the device trains %s than this training's time limit allows for (%.3g s per step, %.3g s "
                "left): its schedule now ends after %d of %d steps (%.3g of %d epochs; it was %d), the "
                "learning rate annealed over them", "faster" if end > planned else "slower", pace,
                max(left, 0.0), schedule.end, total_steps, schedule.end / steps_per_epoch, config.epochs, planned)
            told[0] = told[0] or end < planned

    last_save = time.perf_counter()
    try:
        for epoch in range(first_epoch, config.epochs + 1):
            model.train()
            epoch_start = clock()
            if order is None:
                loss_sum.zero_()
                order = torch.randperm(n, generator=gen, device=dev)
            ended = steps_per_epoch  # the step the epoch ends at (sooner when the schedule ends in it)
            for i in range(first_i, steps_per_epoch):
                if step >= schedule.end:
                    ended = i
                    break
                if should_stop is not None and should_stop():
                    if checkpoint is not None:
                        save(epoch, i, order)
                    raise Preempted(epoch, i, checkpoint is not None)
                idx = order[i * bs:(i + 1) * bs]
                xb = _augment(x_all[idx], pad, config.hflip, gen).contiguous(memory_format=fmt)
                yb = y_all[idx]
                stepper.set_lr(schedule.lr(step))
                if inject_fault is not None and step == 0:
                    _inject(inject_fault)
                    xb = xb * float("nan")
                stepper.run(xb, yb)
                step += 1
                if time_limit is not None and (not marks or (step - marks[0][1]) % check_every == 0):
                    fit_schedule()
                if checkpoint is not None and checkpoint.interval is not None and \
                        time.perf_counter() - last_save > checkpoint.interval and i + 1 < steps_per_epoch:
                    save(epoch, i + 1, order)
                    last_save = time.perf_counter()
            if ended == 0:  # the schedule ended with the epoch before
                break
            cut_short = ended < steps_per_epoch
            if cut_short and checkpoint is not None:
                save(epoch, ended, order)  # (a rerun after a kill here ends at once, as this one does)
            first_i, order = 0, None
            seen = min(ended * bs, n) if cut_short or drop_last else n
            train_loss = float(loss_sum) / seen  # one sync per epoch
            if not math.isfinite(train_loss):
                raise TrialFailed(f"training loss became {train_loss} in epoch {epoch} (diverged); "
                                  "try a lower lr")
            metrics = evaluate(model, val_x, val_y, num_classes=num_classes, device=dev,
                               batch_size=config.eval_batch_size) if val_x is not None else {}
            # (the epoch's last update can break the network with a finite training loss)
            if val_x is not None and len(val_x) and not math.isfinite(metrics["loss"]):
                raise TrialFailed(f"the network's outputs on the validation images are NaN or infinite "
                                  f"after epoch {epoch} (diverged); try a lower lr")
            record = EpochRecord(epoch=epoch, train_loss=train_loss, metrics=metrics,
                                 seconds=clock() - epoch_start)
            result.curve.append(record)
            # The caller's decision first (a pruner's), then the epoch's checkpoint: saved before it,
            # a process killed in between resumed past the rung and was never pruned (a review,
            # 2026-12-06); now it resumes from the epoch before and meets the decision again.
            if on_epoch is not None and on_epoch(record) and not cut_short:
                result.stopped_early = epoch < config.epochs
                break
            if checkpoint is not None and not cut_short:
                save(epoch + 1, 0, None)
                last_save = time.perf_counter()
            if cut_short or step >= schedule.end:
                break
    finally:
        result.step_mode, result.fused = stepper.mode, stepper.fused
        stepper.close()
    if cuda:
        torch.cuda.current_stream(dev).synchronize()
    result.device_seconds = clock() - start
    result.compile_seconds = min(stepper.compile_seconds, result.device_seconds)
    if schedule.end < total_steps:
        result.shortened = (step, total_steps)
    return result


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, device: str | torch.device = "auto",
                   batch_size: int | None = None) -> torch.Tensor:
    """Logits (float32, on the CPU) for normalised images ``x`` in evaluation mode, ``batch_size``
    at a time (None: :func:`eval_batch_size` of the device)."""
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    first = next(model.parameters(), None)
    if cuda and dev.index is None and first is not None and first.device.type == "cuda":
        dev = first.device  # "cuda": the GPU the model is on (the images went to the current one before)
    same = first is not None and first.device == dev
    if not same:  # (never re-place a model that a live CUDA graph points at)
        model = model.to(dev, memory_format=fmt)
    model.eval()
    if batch_size is None:
        batch_size = eval_batch_size(dev.type, model, tuple(x.shape[1:]))
    outs = []
    # (zero images still run one empty batch: the result is (0, classes), not a 1-d empty tensor)
    for i in range(0, max(x.shape[0], 1), batch_size):
        xb = x[i:i + batch_size].to(dev, non_blocking=True).contiguous(memory_format=fmt)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            outs.append(model(xb).float())
    return torch.cat(outs).cpu()


def metrics_from_confusion(conf: torch.Tensor) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1 from a (true x predicted) confusion matrix.

    Balanced accuracy averages recall over classes that occur in the truth; macro-F1 averages F1
    over classes that occur in the truth or the predictions (as scikit-learn does).
    """
    conf = conf.double()
    tp = conf.diag()
    support = conf.sum(1)
    predicted = conf.sum(0)
    total = conf.sum()
    present = support > 0
    recall = tp[present] / support[present]
    seen = present | (predicted > 0)
    f1 = 2 * tp[seen] / (support[seen] + predicted[seen])
    return {
        "accuracy": float(tp.sum() / total) if total > 0 else 0.0,
        "balanced_accuracy": float(recall.mean()) if recall.numel() else 0.0,
        "macro_f1": float(f1.mean()) if f1.numel() else 0.0,
    }


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
             device: str | torch.device = "auto", batch_size: int | None = None) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1 and mean cross-entropy of ``model`` on ``(x, y)``."""
    logits = predict_logits(model, x, device=device, batch_size=batch_size)
    y = y.cpu().long()  # (uint8 labels, which training takes, wrapped around in y * num_classes: review H)
    pred = logits.argmax(1)
    conf = torch.bincount(y * num_classes + pred, minlength=num_classes * num_classes)
    out = metrics_from_confusion(conf.reshape(num_classes, num_classes))
    out["loss"] = float(F.cross_entropy(logits, y)) if len(y) else float("nan")
    return out
