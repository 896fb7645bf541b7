#!/usr/bin/env python
"""End-to-end NAS on Fashion-MNIST: test accuracy against device seconds, versus ResNet-20.

For each budget B (device-seconds a run may spend end to end) and each seed it runs

1. **NAS**: ``budgetnas.search.Search`` on the NB201 space with proxy settings sized to B: trials
   on a subset with a small network, then the final training of the best cell on train+validation
   (whose cost ``Search`` reserves inside the budget), then one test. Timed from the moment the
   data is loaded (and CUDA initialised) to the test accuracy, planning probes included.
2. **ResNet-20** (the hand-designed baseline, ``budgetnas.nn.resnet``): probed as the NAS final
   network is sized (two short runs of different lengths after a warm-up one, all counted: their
   difference is the steady-state epoch time, with the search's ``FINAL_MARGIN``, and what a run
   pays once, the CUDA graph's capture, is reserved beside it), then as many epochs as fit in B
   with the same trainer, on the same training images, then one test. (A first epoch's own time,
   as this was sized before, counted the capture as epoch time, and gave the baseline fewer epochs
   than it could afford while NAS was sized from a steady-state probe.)

It prints a table of mean +- std over seeds per budget with the targets (>= 94 % within 60 s,
>= 95.5 % within 480 s, on one H100) and whether they were met, and appends it, with the device,
date, torch version and the exact command, to ``benchmarks/RESULTS.md``.

``--rows`` appends each run as a JSON line as it finishes. A run stopped by SIGTERM (a time limit)
still leaves a row, marked ``"partial": true`` with the phase it was in and how long it had run
(a search stops at its next checkpoint; anything else at once); partial rows are listed but left
out of the summary. ``--progress`` logs each trial and each ResNet epoch as it ends (to stderr).

Examples::

    python benchmarks/fashion_mnist_e2e.py                      # 60 s and 480 s, seeds 0,1,2
    python benchmarks/fashion_mnist_e2e.py --smoke              # tiny CPU run, ~3-4 minutes
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sys as _sys  # noqa: E402

_sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import append_results, cpu_name  # noqa: E402
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from budgetnas.data import DataSplits, channel_stats, load_dataset, stratified_subset, to_tensor  # noqa: E402
from budgetnas.errors import BudgetError  # noqa: E402
from budgetnas.nn.resnet import resnet  # noqa: E402
from budgetnas.search import Search, SearchConfig  # noqa: E402
from budgetnas.search.records import final_epochs_trained  # noqa: E402
from budgetnas.search.study import FINAL_MARGIN, PROBE_STEPS_CUDA  # noqa: E402
from budgetnas.spaces import create_space  # noqa: E402
from budgetnas.train import TrainConfig, evaluate, resolve_device, seeded_build, train  # noqa: E402

# The product's promise on Fashion-MNIST, end to end on one H100 (budget s -> test accuracy).
TARGETS: dict[float, float] = {60.0: 0.94, 480.0: 0.955}
SMOKE_TRAIN, SMOKE_TEST = 2000, 1000  # images in --smoke (stratified subsets of the real splits)
COSTLIEST = ("nor_conv_3x3",) * 6  # the NB201 cell with the most compute: an upper bound for probes

# ------------------------------------------------------------------------------------ plans
@dataclass(frozen=True)
class Plan:
    """How a budget is spent: the search proxy, and the final networks to choose from."""

    C: int  # search network channels
    N: int  # search network cells per stage
    epochs: int  # per trial
    subset: float  # fraction of the search-train split each trial trains on
    search_resolution: int | None  # None: the final resolution (28 for Fashion-MNIST)
    final_options: tuple[tuple[int, int], ...]  # (final_C, final_N), preferred first
    final_share: float  # part of the budget left after planning that the final training gets
    min_final_epochs: int  # take a final option only if at least this many epochs fit
    max_final_epochs: int

    def describe(self) -> str:
        res = self.search_resolution or "native"
        return (f"search C={self.C} N={self.N} {self.epochs} ep on {self.subset:g} of train at {res} px; "
                f"final {self.final_share:.0%} of budget, options {self.final_options}")


def plan_for(budget: float, smoke: bool) -> Plan:
    """Proxy settings per budget. The numbers are choices, explained here, not measurements.

    On an H100 the C=8..16, N=1..2 proxies are bound by kernel launches, not arithmetic, so a
    trial's price is set mostly by its number of steps (images x epochs / batch) and its
    validation pass, not by its width: subsets and few epochs are what make many trials fit.
    The final network gets somewhat over half of the budget: on Fashion-MNIST a well-trained
    decent cell beats a barely-trained best cell, so a short search that finds a good cell and a
    long final training of it is the better trade. Final epochs are not fixed: they are sized at
    run time from a probe of the costliest cell (see ``size_final``), so the plan holds on any GPU.
    """
    if smoke:
        # 2 CPU cores, ~2,000 images, ~40 s: a couple of 2-epoch trials of the smallest proxy at
        # 16 px on half of the 1,600 search-train images, and a one-cell-per-stage final network.
        return Plan(C=8, N=1, epochs=2, subset=0.5, search_resolution=16,
                    final_options=((16, 1), (8, 1)), final_share=0.5, min_final_epochs=3,
                    max_final_epochs=10)
    if budget <= 120:
        # ~60 s: 3-epoch trials of C=8,N=1 on a quarter of the 48k search-train images (~1 s each
        # on an H100, so ~15-25 trials in ~25 s); final C=16 with N=3 rather than NB201's N=5,
        # since at one minute more epochs of a shallower net beat fewer epochs of a deeper one.
        return Plan(C=8, N=1, epochs=3, subset=0.25, search_resolution=None,
                    final_options=((16, 3), (16, 2), (16, 1)), final_share=0.55, min_final_epochs=8,
                    max_final_epochs=30)
    if budget <= 1200:
        # ~480 s: 4-epoch trials of C=16,N=1 on half the images (~4 s each, ~40 trials in ~190 s);
        # the final network as wide as lets >= 15 epochs fit: width is what 95.5 % needs most.
        return Plan(C=16, N=1, epochs=4, subset=0.5, search_resolution=None,
                    final_options=((32, 5), (24, 5), (16, 5), (16, 3)), final_share=0.6,
                    min_final_epochs=15, max_final_epochs=60)
    # Larger budgets: a truer proxy (two cells per stage, all images) and a long final training.
    return Plan(C=16, N=2, epochs=6, subset=1.0, search_resolution=None,
                final_options=((32, 5), (16, 5)), final_share=0.6, min_final_epochs=20,
                max_final_epochs=100)


# What is running now, for the row a SIGTERM leaves behind (see measure).
NOW: dict[str, Any] = {}


def phase(name: str, **extra: Any) -> None:
    NOW["phase"] = name
    NOW.update(extra)


# ------------------------------------------------------------------------------------ timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now(device: torch.device) -> float:
    sync(device)
    return time.perf_counter()


def seconds_per_image(C: int, N: int, *, in_channels: int, num_classes: int, resolution: int,
                      batch: int, device: torch.device, step_mode: str = "auto") -> float:
    """Steady-state training seconds per image of the costliest NB201 cell at (C, N).

    Two runs of different lengths, after a warm-up run: their difference cancels what every run
    pays once (moving the model, building the optimizer, capturing the CUDA graph, which on a GPU
    costs several eager steps), which the final training pays once, not per epoch. One run of one
    batch, as this was before 2026-12-02, measured mostly those one-off costs on CUDA and so sized
    the final training far too short.
    """
    space = create_space("nb201", C=C, N=N)
    model = seeded_build(lambda: space.build(COSTLIEST, in_channels=in_channels, num_classes=num_classes), 0)

    def inputs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, in_channels, resolution, resolution), torch.randint(0, num_classes, (n,))
    per_image, _, _ = steady_probe(lambda: model, inputs, TrainConfig(epochs=1, batch_size=batch, warmup_epochs=0,
                                                                      step_mode=step_mode),
                                   num_classes=num_classes, device=device)
    return per_image


def steady_probe(build: Any, inputs: Any, cfg: TrainConfig, *, num_classes: int, device: torch.device,
                 seed: int = 0) -> tuple[float, float, float]:
    """(steady-state training seconds per image, seconds a run pays once, seconds all the probe's
    runs took) of ``build()``'s network under ``cfg`` (one epoch, its batch size set).

    A warm-up run of one step (cuDNN's algorithm choice, the allocator), then two runs of
    different lengths on ``inputs(n)`` (n = batch x steps): their difference is a step's time, and
    the shorter run less its steps what every run pays once (moving the model, building the
    optimizer, capturing the CUDA graph). On CUDA a replayed step takes milliseconds, about the
    run-to-run jitter of those one-off costs: 8 steps of difference left the per-step time mostly
    noise, so 20, as the search's own probe (``Search._probe``) uses.
    """
    batch = cfg.batch_size
    assert batch is not None
    steps = PROBE_STEPS_CUDA if device.type == "cuda" else (1, 3)
    times = []
    for m in (1, *steps):
        x, y = inputs(batch * m)
        times.append(train(build(), x, y, None, None, cfg, num_classes=num_classes, seed=seed,
                           device=device).device_seconds)
    per_step = (times[2] - times[1]) / (steps[1] - steps[0])
    if per_step <= 0:  # timer noise on a very fast step: the plain average, an upper bound
        per_step = times[2] / steps[1]
    return per_step / batch, max(0.0, times[1] - per_step * steps[0]), sum(times)


def size_final(plan: Plan, seconds_left: float, *, n_final: int, in_channels: int, num_classes: int,
               resolution: int, batch: int, device: torch.device,
               step_mode: str = "auto") -> tuple[int, int, int, float]:
    """(final_C, final_N, final_epochs, forecast epoch seconds): the first option that fits."""
    available = plan.final_share * seconds_left
    choice = None
    for C, N in plan.final_options:
        # The search's own margin over a probe (shuffles, the last partial batch, checkpoints): it
        # reserves the final training so, and would refuse a budget planned any tighter.
        epoch = FINAL_MARGIN * n_final * seconds_per_image(C, N, in_channels=in_channels, num_classes=num_classes,
                                                   resolution=resolution, batch=batch, device=device,
                                                   step_mode=step_mode)
        epochs = min(plan.max_final_epochs, int(available // epoch))
        choice = (C, N, max(1, epochs), epoch)
        if epochs >= plan.min_final_epochs:
            break
    assert choice is not None
    return choice


def warm_up_imports() -> None:
    """Pay the one-off import and set-up costs of a process (Optuna's samplers, SQLAlchemy's
    SQLite dialect, Alembic's migrations) before any clock starts: they are start-up, not device
    time, and otherwise only the first run of the process would carry ~3 s of them."""
    from budgetnas.search.study import open_study
    from budgetnas.strategies import create_strategy

    with tempfile.TemporaryDirectory(prefix="budgetnas-warm-") as tmp:
        study = open_study(Path(tmp), ["maximize"], sampler=create_strategy("tpe", seed=0))
        study.set_user_attr("warm", True)
        del study


def warm_up_cuda(device: torch.device, force: bool = False) -> None:
    """Pay a process's one-off GPU set-up before any clock starts: cuDNN's and cuBLAS's handles,
    the lazy loading of their kernels, a first CUDA graph capture and a bf16 channels_last
    convolution forward and backward, by training a tiny NB201 network for an epoch and scoring it
    once. Otherwise the first run of a process (always NAS: it runs before ResNet, and only the
    first of several seeds) paid them inside its own clock, in its first timing probe (a review,
    2026-12-06). Nothing on a CPU (``force``: all the same, to test it there)."""
    if device.type != "cuda" and not force:
        return
    space = create_space("nb201", C=4, N=1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 1, 28, 28, generator=gen), torch.randint(0, 10, (256,), generator=gen)
    cell = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    model = seeded_build(lambda: space.build(cell, in_channels=1, num_classes=10), 0)  # (every op)
    result = train(model, x, y, None, None, TrainConfig(epochs=1, batch_size=64, warmup_epochs=0),
                   num_classes=10, device=device)
    evaluate(result.model, x, y, num_classes=10, device=device)
    del model, result
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------ runs
def run_nas(splits: DataSplits, budget: float, seed: int, args: argparse.Namespace,
            device: torch.device, run_root: Path) -> dict[str, Any]:
    """One budgeted search + final training + test; every second after data loading counted."""
    plan = plan_for(budget, args.smoke)
    n_final = len(splits.train)
    c, h, w = splits.train.shape
    resolution = min(max(h, w), 32)
    batch = TrainConfig().resolved_batch_size(n_final, device.type)
    # Work the library's ledger does not see (preparing tensors, the test pass, saving the model,
    # Optuna's bookkeeping) is kept outside the search's budget by this margin.
    margin = 1.0 + 0.05 * budget
    t0 = now(device)
    phase("sizing the final network", t0=t0)
    final_C, final_N, final_epochs, epoch_s = size_final(
        plan, budget - margin, n_final=n_final, in_channels=c, num_classes=splits.train.num_classes,
        resolution=resolution, batch=batch, device=device, step_mode=args.step_mode)
    result = None
    attempts = []
    while result is None:
        planned = now(device) - t0
        run_dir = run_root / f"nas-b{budget:g}-s{seed}-{len(attempts)}"
        config = SearchConfig(
            data="fashion-mnist", data_root=args.data_root, run_dir=str(run_dir), space="nb201",
            C=plan.C, N=plan.N, epochs=plan.epochs, subset=plan.subset,
            search_resolution=plan.search_resolution, final_C=final_C, final_N=final_N,
            final_epochs=final_epochs, seed=seed, device=args.device, gpu_price=args.gpu_price,
            step_mode=args.step_mode, concurrent=args.concurrent, fuse=args.fuse,
            # Two limits, both what is left of B: the device-hour ledger counts the search's probes,
            # trials and final training; the wall limit also counts the bookkeeping between trials
            # (Optuna's SQLite writes), which on a GPU can be a tenth of a short trial.
            max_device_hours=max(budget - planned - margin, 1.0) / 3600,
            max_time=max(budget - planned - margin, 1.0),
        )
        phase(f"search (final C={final_C} N={final_N} x {final_epochs} epochs)")
        print(f"  NAS budget {budget:g} seed {seed}: final C={final_C} N={final_N} x {final_epochs} epochs "
              f"(forecast {epoch_s:.2f} s/epoch), {now(device) - t0:.1f} s spent sizing", file=sys.stderr, flush=True)
        try:
            # (progress: one log line per trial when stderr is no terminal, at INFO)
            result = Search(config, data=splits, data_name="fashion-mnist", progress=args.progress).run()
        except BudgetError as e:
            # The search's own probe forecast the final training above what is left: shorten it.
            attempts.append(f"{final_epochs} final epochs refused: {e}")
            if final_epochs == 1:
                raise
            final_epochs = max(1, final_epochs // 2)
    total = now(device) - t0
    final = json.loads((Path(result.run_dir) / "best" / "metrics.json").read_text()) \
        if (Path(result.run_dir) / "best" / "metrics.json").exists() else {}
    final_s = float(final.get("device_seconds", 0.0))
    return {
        "method": "NAS", "budget": budget, "seed": seed, "trials": result.spent.trials,
        "search_s": result.spent.device_seconds - final_s, "final_s": final_s,
        "ledger_s": result.spent.device_seconds, "total_s": total,
        "accuracy": result.test_metrics.get("accuracy", float("nan")),
        "arch": result.best_arch, "step_mode": args.step_mode, "concurrent": args.concurrent,
        "fuse": args.fuse, "detail": f"final C={final_C} N={final_N} x {final_epochs_trained(final) if final else final_epochs}"
        f"{' (shortened)' if final.get('shortened') else ''} "
        f"(forecast {epoch_s:.2f} s/ep)", "stop": result.stop_reason, "retries": attempts,
        "cost_usd": result.spent.cost,
        **({"partial": True, "phase": f"search stopped by a signal ({result.stop_reason})"}
           if result.preempted else {}),
    }


def run_resnet(splits: DataSplits, budget: float, seed: int, device: torch.device,
               progress: bool = False) -> dict[str, Any]:
    """ResNet-20 on the same training images (train+val) for as many epochs as fit in ``budget``."""
    t0 = now(device)
    phase("ResNet-20 tensor conversion", t0=t0)
    num_classes = splits.train.num_classes
    c = splits.train.shape[0]
    mean, std = channel_stats(splits.train.images)
    x = to_tensor(splits.train, mean=mean, std=std)
    y = torch.tensor(splits.train.labels, dtype=torch.int64)
    assert splits.test is not None
    tx = to_tensor(splits.test, mean=mean, std=std)
    ty = torch.tensor(splits.test.labels, dtype=torch.int64)

    def build() -> torch.nn.Module:
        return seeded_build(lambda: resnet(20, in_channels=c, num_classes=num_classes), seed)

    # Same recipe as the NAS final training (lr, batch, flips for clothes); only epochs change.
    # Sized as the NAS final network is (size_final): steady-state seconds per image from two
    # short runs, times FINAL_MARGIN, and what a run pays once reserved beside the epochs.
    phase("ResNet-20 probe")
    batch = TrainConfig().resolved_batch_size(len(y), device.type)

    def inputs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(n) % len(y)
        return x[idx], y[idx]
    per_image, once, probe_s = steady_probe(build, inputs, TrainConfig(epochs=1, batch_size=batch, warmup_epochs=0,
                                                                        hflip=True),
                                            num_classes=num_classes, device=device, seed=seed)
    epoch_s = FINAL_MARGIN * per_image * len(y)
    test_reserve = 0.5 + epoch_s * len(ty) / len(y)  # a forward pass is ~1/3 of a training step
    left = budget - (now(device) - t0) - test_reserve - once - 0.02 * budget
    epochs = max(1, int(left // epoch_s))  # (at least one, over the budget if need be: the row says)
    phase(f"ResNet-20 training ({epochs} epochs planned)", epochs_done=0)
    if progress:
        print(f"  ResNet-20 budget {budget:g} seed {seed}: {epochs} epochs of {epoch_s:.2f} s (steady, with margin) "
              f"+ {once:.2f} s once; probe {probe_s:.1f} s", file=sys.stderr, flush=True)

    def on_epoch(record: Any) -> bool:
        NOW["epochs_done"] = record.epoch
        if progress:
            print(f"  ResNet-20 epoch {record.epoch}/{epochs}: {record.seconds:.2f} s, {now(device) - t0:.1f} s "
                  "since the clock started", file=sys.stderr, flush=True)
        return False
    model = train(build(), x, y, None, None, TrainConfig(epochs=epochs, hflip=True), num_classes=num_classes,
                  seed=seed, device=device, on_epoch=on_epoch).model
    phase("ResNet-20 test")
    acc = evaluate(model, tx, ty, num_classes=num_classes, device=device)["accuracy"]
    total = now(device) - t0
    return {"method": "ResNet-20", "budget": budget, "seed": seed, "trials": None,
            "search_s": probe_s, "final_s": None, "ledger_s": None, "total_s": total,
            "accuracy": acc, "arch": "resnet20",
            "detail": f"{epochs} ep (steady {epoch_s:.2f} s/ep with margin, {once:.2f} s once; probe {probe_s:.1f} s)",
            "stop": "", "retries": [], "cost_usd": None}


# ------------------------------------------------------------------------------------ report
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name(f", torch threads {torch.get_num_threads()}")


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * m:.2f} ± {100 * s:.2f} %"


def device_caveat(rows: list[dict[str, Any]]) -> str:
    """What the met column must add about the device: the targets name one H100. The GPU machine
    lent to this project is by default one H100 (device kind nvidia-h100-x1), but a call that
    names no kind may land on an H200: the same chip's compute with 1.4x the memory bandwidth (4.8
    vs 3.35 TB/s), which these memory- and launch-bound networks can use, so a result there is
    labelled as such rather than passed off as the H100's."""
    devices = {r["device"] for r in rows}
    if devices and all("H100" in d for d in devices):
        return ""
    if devices and all("H100" in d or "H200" in d for d in devices):
        return " (on an H200, not the H100 the target names)"
    return " (not an H100: does not count)"


def summary_table(rows: list[dict[str, Any]], budgets: list[float]) -> str:
    rows = [r for r in rows if not r.get("partial")]  # (cut off: no accuracy to count)
    lines = ["| budget (device-s) | method | runs | test accuracy (mean ± std) | end-to-end s (mean / max) "
             "| trials or epochs | target | met? |",
             "| ---: | --- | ---: | --- | --- | --- | --- | --- |"]
    for b in budgets:
        target = TARGETS.get(b)
        for method in ("NAS", "ResNet-20"):
            rs = [r for r in rows if r["budget"] == b and r["method"] == method]
            if not rs:
                continue
            accs = [r["accuracy"] for r in rs]
            times = [r["total_s"] for r in rs]
            if method == "NAS":
                work = f"{statistics.fmean(r['trials'] for r in rs):.1f} trials"
            else:
                work = "epochs " + ",".join(r["detail"].split(" ")[0] for r in rs)
            if target is None:
                tgt, met = "-", "no target at this budget"
            else:
                tgt = f">= {100 * target:.1f} % in {b:g} s"
                ok = statistics.fmean(accs) >= target and max(times) <= b
                met = ("met" if ok else "not met") + device_caveat(rs)
            lines.append(f"| {b:g} | {method} | {len(rs)} | {mean_std(accs)} | "
                         f"{statistics.fmean(times):.1f} / {max(times):.1f} | {work} | {tgt} | {met} |")
    return "\n".join(lines)


def runs_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| budget | seed | method | trials | search s | final s | ledger s | end-to-end s | test acc "
             "| network |", "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    for r in rows:
        if r.get("partial") and "accuracy" not in r:  # stopped by a signal before it had a result
            lines.append(f"| {r['budget']:g} | {r['seed']} | {r['method']} | - | - | - | - | "
                         f"{f(r.get('total_s'))} | - | **cut off** in {r.get('phase', '?')} |")
            continue
        # A pipe ends a table cell even inside backticks unless escaped (GitHub's tables).
        arch = str(r["arch"]).replace("|", "\\|")
        net = r["detail"] if r["method"] != "NAS" else f"`{arch}` {r['detail']}"
        if r.get("partial"):
            net += f" **cut off**: {r.get('phase', '?')}"
        lines.append(f"| {r['budget']:g} | {r['seed']} | {r['method']} | {r['trials'] if r['trials'] is not None else '-'} "
                     f"| {f(r['search_s'])} | {f(r['final_s'])} | {f(r['ledger_s'])} | {r['total_s']:.1f} "
                     f"| {100 * r['accuracy']:.2f} % | {net} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", help="device-seconds per run, comma separated (default 60,480; "
                                     "--smoke: 40)")
    p.add_argument("--seeds", help="comma separated (default 0,1,2; --smoke: 0,1)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--step-mode", default="auto", choices=("auto", "eager", "graph"),
                   help="the trainer's step (auto: CUDA graphs on a GPU); eager reproduces the "
                        "trainer before issue 5, for the before/after comparison")
    p.add_argument("--concurrent", type=int, default=1,
                   help="candidates trained at once by the search (1; 0: auto)")
    p.add_argument("--fuse", default="off", choices=("off", "final", "all"),
                   help="torch.compile's fused kernels for the final training or every trial (off)")
    p.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX files "
                   "(default: $BUDGETNAS_DATA/fashion-mnist or /usr/share/datasets/fashion-mnist)")
    p.add_argument("--gpu-price", type=float, default=None,
                   help="USD per device-hour for the cost column (default: detected preset)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--keep-runs", default=None, help="keep the run directories under this folder")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; --smoke: 1, since on a small shared CPU "
                        "oversubscribed threads run many times slower)")
    p.add_argument("--methods", default="nas,resnet", help="nas, resnet or both (to split long runs "
                   "across commands)")
    p.add_argument("--rows", default=None, help="append every finished run as a JSON line to this file")
    p.add_argument("--from-rows", default=None, help="run nothing: summarise rows saved with --rows "
                   "(comma separated files) and append that table")
    p.add_argument("--progress", action="store_true",
                   help="log each trial (the search's progress lines) and each ResNet epoch to stderr")
    p.add_argument("--smoke", action="store_true",
                   help=f"tiny CPU settings: {SMOKE_TRAIN} train / {SMOKE_TEST} test images, 40 s budgets")
    return p.parse_args(argv)


def measure(args: argparse.Namespace, budgets: list[float], seeds: list[int],
            methods: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run every (budget, seed, method); each row is also appended to ``--rows`` as it finishes."""
    threads = args.threads if args.threads is not None else (1 if args.smoke else None)
    if threads is not None:
        torch.set_num_threads(threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.zeros(1, device=device)  # create the CUDA context before any clock starts
    warm_up_imports()
    warm_up_cuda(device)
    splits = load_dataset("fashion-mnist", root=args.data_root)
    if args.smoke:
        assert splits.test is not None
        splits = DataSplits(train=stratified_subset(splits.train, SMOKE_TRAIN / len(splits.train), seed=0),
                            test=stratified_subset(splits.test, SMOKE_TEST / len(splits.test), seed=0))
    meta = {"device": device_name(device), "torch": torch.__version__, "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python " + shlex.join(sys.argv), "smoke": bool(args.smoke),
            "n_train": len(splits.train), "n_test": len(splits.test) if splits.test else 0}
    print(f"device: {meta['device']}; torch {meta['torch']}; {meta['n_train']} train / {meta['n_test']} "
          "test images", file=sys.stderr)
    rows: list[dict[str, Any]] = []

    def keep(r: dict[str, Any]) -> None:
        r.update(meta)
        rows.append(r)
        if args.rows:
            with open(args.rows, "a") as fh:
                fh.write(json.dumps(r) + "\n")

    # A time limit's SIGTERM outside a search (a search handles it itself: it stops at its next
    # checkpoint and returns, and its row is marked partial): leave a row saying what was cut off.
    def on_term(signum: int, frame: Any) -> None:
        if "method" not in NOW:
            print(f"cut off by {signal.Signals(signum).name} before any run started", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        t0 = NOW.get("t0")
        r = {"method": NOW.get("method"), "budget": NOW.get("budget"), "seed": NOW.get("seed"), "partial": True,
             "phase": f"{NOW.get('phase')}" + (f", {NOW['epochs_done']} epochs done" if "epochs_done" in NOW else ""),
             "total_s": None if t0 is None else time.perf_counter() - t0,
             "signal": signal.Signals(signum).name}
        keep(r)
        print(f"  {r['method']} budget {r['budget']} seed {r['seed']}: cut off by {r['signal']} in {r['phase']} "
              f"after {r['total_s'] or 0:.1f} s" + (f" (row in {args.rows})" if args.rows else ""),
              file=sys.stderr, flush=True)
        os._exit(128 + signum)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    with tempfile.TemporaryDirectory(prefix="budgetnas-e2e-") as tmp:
        run_root = Path(args.keep_runs) if args.keep_runs else Path(tmp)
        run_root.mkdir(parents=True, exist_ok=True)
        for budget in budgets:
            print(f"budget {budget:g} s: {plan_for(budget, args.smoke).describe()}", file=sys.stderr)
            for seed in seeds:
                for method in methods:
                    NOW.clear()
                    NOW.update(method=method, budget=budget, seed=seed, phase="starting")
                    try:
                        r = (run_nas(splits, budget, seed, args, device, run_root) if method == "NAS"
                             else run_resnet(splits, budget, seed, device, args.progress))
                    except Exception as e:  # one failed run must not lose the others' numbers
                        print(f"  {method} budget {budget:g} seed {seed} FAILED: {type(e).__name__}: {e}",
                              file=sys.stderr)
                        continue
                    keep(r)
                    print(f"  {method:9s} budget {budget:g} seed {seed}: acc {100 * r['accuracy']:.2f} % "
                          f"in {r['total_s']:.1f} s; {r['detail']}"
                          + (f"; {r['trials']} trials, stop: {r['stop']}" if method == "NAS" else "")
                          + (" (PARTIAL: stopped by a signal)" if r.get("partial") else ""),
                          file=sys.stderr, flush=True)
                    if r.get("partial"):  # a time limit's signal: write what there is and stop
                        return rows, meta
    return rows, meta


def load_rows(paths: str) -> list[dict[str, Any]]:
    rows = []
    for path in paths.split(","):
        for line in Path(path).read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.progress:
        logging.getLogger("budgetnas").setLevel(logging.INFO)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    known = {"nas": "NAS", "resnet": "ResNet-20"}
    methods = [known[m.strip().lower()] for m in args.methods.split(",") if m.strip()]
    if args.from_rows:
        rows = load_rows(args.from_rows)
        budgets = sorted({float(r["budget"]) for r in rows})
        sources = sorted({f"{r['date']} on {r['device']} (torch {r['torch']}): `{r['command']}`" for r in rows})
        smoke = any(r.get("smoke") for r in rows)
        meta = {"device": "; ".join(sorted({r["device"] for r in rows})), "torch": ", ".join(sorted({r["torch"] for r in rows})),
                "python": platform.python_version(), "command": "python " + shlex.join(sys.argv),
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "smoke": smoke,
                "n_train": rows[0]["n_train"] if rows else 0, "n_test": rows[0]["n_test"] if rows else 0}
        provenance = "- summarised from runs measured earlier, by:\n" + "\n".join(f"  - {s}" for s in sources)
    else:
        budgets = [float(b) for b in (args.budgets or ("40" if args.smoke else "60,480")).split(",")]
        seeds = [int(s) for s in (args.seeds or ("0,1" if args.smoke else "0,1,2")).split(",")]
        rows, meta = measure(args, budgets, seeds, methods)
        smoke = bool(args.smoke)
        provenance = ""

    table = summary_table(rows, budgets)
    print(table)
    title = ("## Fashion-MNIST end to end: NAS vs ResNet-20 — CPU smoke run (not the GPU targets; "
             "GPU numbers pending)" if smoke else "## Fashion-MNIST end to end: NAS vs ResNet-20")
    bullets = [
        f"- date: {meta['date']}",
        f"- device: {meta['device']}",
        f"- torch {meta['torch']}, Python {meta['python']}",
        f"- command: `{meta['command']}`",
        *([provenance] if provenance else []),
        f"- data: Fashion-MNIST, {meta['n_train']} train(+val) / {meta['n_test']} test images"
        + (" (stratified subsets, --smoke)" if smoke else ""),
        "- clock: from data loaded (CUDA context made) to the test accuracy, `time.perf_counter` after a "
        "device synchronize; NAS includes sizing probes, the search's probes, trials, the final training "
        "and the test; ResNet-20 includes tensor conversion, its probe runs, training and the test",
        "- met: mean test accuracy >= target and every run's end-to-end time <= budget",
        *(f"- budget {b:g} s: {plan_for(b, smoke).describe()}" for b in budgets),
    ]
    nl = "\n"
    section = f"""{title}

{nl.join(bullets)}

{table}

Runs (search s: trials and probes from the ledger, for ResNet its probe runs; ledger s: what the
search's budget counted; end-to-end s: the clock above):

{runs_table(rows)}
"""
    append_results(Path(args.out), section)
    print(f"appended to {args.out}", file=sys.stderr)
    return 0 if any(not r.get("partial") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
