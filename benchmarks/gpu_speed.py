#!/usr/bin/env python
"""Training speed of NB201 networks in each of the trainer's modes, against the device's peaks.

Issue 5's evidence. For NB201's best CIFAR-10 cell and a wide, a deep and a tiny cell (the cells
of ``roofline.py``; C=16, N=5, 10 classes, 3x32x32), at several batch sizes, it reports training
images/s in these modes, all through ``budgetnas.train.train`` with its augmentation, schedule,
label smoothing and clipping (what a search trial really runs):

* ``eager``: ``step_mode="eager"`` (bf16 autocast, channels_last, fused SGD);
* ``graph``: ``step_mode="graph"``: each step replayed from a CUDA graph;
* ``fused``: ``step_mode="graph", fuse=True``: forward, loss and backward compiled by inductor
  (BatchNorm, ReLU and the node sums fused into fewer kernels), then captured in a CUDA graph;
* ``concurrent``: ``--concurrent`` candidates (default 4) trained at once, each in its own thread,
  CUDA stream and graph, as ``budgetnas search --concurrent K`` does; the aggregate images/s;
* ``concurrent-fused``: the same with fused kernels.

Speed is steady state: each measurement trains 1 + ``--epochs`` epochs and times only epochs 2
onwards, between the ends of epochs (where the trainer synchronises the device to read the loss),
so one-off costs (moving the model, graph capture, compilation: all in epoch 1) are left out
rather than subtracted. (Subtracting a shorter run's wall time, as this did before, left the
run-to-run jitter of a compilation, seconds, against a timed part under one second at these speeds.)
Concurrent candidates wait for each other at the end of epoch 1, so their timed epochs run
together; the aggregate is all their timed images over the wall time from that common start to
the end of the last one. ``fused`` first trains one epoch untimed; the "cold compile" column is
that first epoch's time minus the timed run's first epoch: what inductor's on-disk cache saves.
It understates what a new network pays, since every run still traces the network anew (dynamo and
AOTAutograd); and only the first fused mode of a cell and batch finds the cache cold.
Against the peaks measured here and now (after half a second of warm-up, so that the clocks have
ramped up): a bf16 matmul (8192^3) for FLOP/s and a 1 GiB device-to-device copy for memory
bandwidth. FLOPs per training image = 3 x 2 x multiply-adds, and bytes per training image = the
unfused bf16 model of ``roofline.py``; so "MFU" and "BW util" are model FLOP and model byte utilisation.

``--accuracy`` also trains the best cell for ``--acc-epochs`` (10) epochs on the CIFAR-10 JPEG
train set (50,000) in eager, graph, fused and concurrent mode and tests it on the 10,000 test images:
the speed must not cost accuracy (issue 5: within 0.3 points of eager).

Examples::

    python benchmarks/gpu_speed.py                        # the unfused table, on the GPU machine
    python benchmarks/gpu_speed.py --cells best --batches 512,1024 --modes fused,concurrent-fused
    python benchmarks/gpu_speed.py --accuracy             # + the 10-epoch accuracy check
    python benchmarks/gpu_speed.py --smoke --synthetic    # tiny run on a CPU, proves it works
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _report import append_results, cpu_name  # noqa: E402
from roofline import CELLS, analyse  # noqa: E402
from throughput import DEFAULT_TAR, load_cifar_subset  # noqa: E402

from budgetnas.data import channel_stats, from_arrays, to_tensor  # noqa: E402
from budgetnas.spaces import NB201Space  # noqa: E402
from budgetnas.train import TrainConfig, evaluate, resolve_device, seeded_build, train  # noqa: E402

MODES = ("eager", "graph", "fused", "concurrent", "concurrent-fused")


# ------------------------------------------------------------------------------------ peaks
def _timed(fn, dev: torch.device, repeats: int, warm_s: float = 0.0) -> float:
    fn()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    # An idle GPU runs below its clock and takes a while to ramp up (not measured here: no GPU
    # yet), so a peak timed from cold would understate it, and MFU overstate.
    t_warm = time.perf_counter()
    while time.perf_counter() - t_warm < warm_s:
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return (time.perf_counter() - t0) / repeats


def measure_peaks(dev: torch.device, smoke: bool) -> tuple[float, float]:
    """(FLOP/s of a large matmul, bytes/s of a large copy) on ``dev``, measured now."""
    n = 1024 if smoke or dev.type != "cuda" else 8192
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    warm_s = 0.5 if dev.type == "cuda" and not smoke else 0.0
    flops = 2 * n**3 / _timed(lambda: a @ b, dev, 5 if smoke else 20, warm_s)
    elems = (1 << 24) if smoke or dev.type != "cuda" else (1 << 29)  # 1 GiB of bf16 on a GPU
    src = torch.empty(elems, device=dev, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    bw = 2 * src.numel() * src.element_size() / _timed(lambda: dst.copy_(src), dev, 5 if smoke else 20, warm_s)
    return flops, bw


# ------------------------------------------------------------------------------------ data
def make_data(args: argparse.Namespace, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if args.synthetic:
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        return torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)
    tar = Path(args.cifar_tar)
    if not tar.is_file():
        raise SystemExit(f"no CIFAR-10 tarball at {tar}: give --cifar-tar PATH, or --synthetic")
    x, y = load_cifar_subset(tar, n, split)
    data = from_arrays(x, y, classes=[str(i) for i in range(10)], name=f"cifar10-{split}")
    if split == "train":
        args.stats = channel_stats(data.images)
    mean, std = args.stats
    return to_tensor(data, mean=mean, std=std), torch.tensor(data.labels, dtype=torch.int64)


# ------------------------------------------------------------------------------------ runs
def build(cell: str, seed: int) -> torch.nn.Module:
    space = NB201Space(C=16, N=5)
    return seeded_build(lambda: space.build(space.parse(cell), in_channels=3, num_classes=10), seed)


def train_once(cell: str, mode: str, bs: int, epochs: int, x: torch.Tensor, y: torch.Tensor,
               dev: torch.device, k: int, seed: int = 0, val: tuple | None = None
               ) -> tuple[float, list, list[list[float]]]:
    """Wall seconds to train ``k`` candidates (1 unless concurrent), their results, and for each
    the ``time.perf_counter()`` at the start of epoch 2 and at the end of every later epoch."""
    step_mode = "eager" if mode == "eager" else "graph"
    cfg = TrainConfig(epochs=epochs, batch_size=bs, step_mode=step_mode, fuse=mode.endswith("fused"))
    results: list = [None] * k
    stamps: list[list[float]] = [[] for _ in range(k)]
    errors: list[BaseException] = []
    # Candidates capture (and compile) one at a time: all of them start epoch 2 together, so that
    # their timed epochs overlap.
    barrier = threading.Barrier(k) if k > 1 else None

    def one(i: int) -> None:
        def on_epoch(record) -> bool:
            if record.epoch == 1 and barrier is not None:
                barrier.wait()
            stamps[i].append(time.perf_counter())  # the trainer has just synchronised the device
            return False

        try:
            model = build(cell, seed + i)
            stream = torch.cuda.stream(torch.cuda.Stream(dev)) if dev.type == "cuda" and k > 1 else None
            with stream if stream is not None else contextlib.nullcontext():
                results[i] = train(model, x, y, *(val or (None, None)), cfg, num_classes=10, seed=seed + i,
                                   device=dev, on_epoch=on_epoch)
        except BaseException as e:  # reported by the caller
            errors.append(e)
            if barrier is not None:
                barrier.abort()  # the others must not wait for this one

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    if k == 1:
        one(0)
    else:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return time.perf_counter() - t0, results, stamps


def steady_rate(stamps: list[list[float]], images_per_epoch: int) -> float:
    """Aggregate images/s of candidates from their epoch stamps (see :func:`train_once`): the
    images of all their timed epochs over the wall time from their common start of epoch 2 to the
    end of the last one (for one candidate, its epochs 2.. over their time); NaN without any."""
    if not stamps or any(len(s) < 2 for s in stamps):
        return float("nan")
    start, end = max(s[0] for s in stamps), max(s[-1] for s in stamps)
    epochs = sum(len(s) - 1 for s in stamps)
    return epochs * images_per_epoch / (end - start) if end > start else float("nan")


def speed(cell: str, mode: str, bs: int, args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor,
          dev: torch.device) -> tuple[float, str, float | None]:
    """Steady-state training images/s (aggregate over the candidates), how the step ran, and for
    ``fused`` the seconds of a first (cold) run's first epoch beyond the timed run's."""
    k = args.concurrent if mode.startswith("concurrent") else 1
    cold = None
    if mode == "fused":  # (concurrent-fused: its timed run's epoch 1 pays the compilations)
        _, cold, _ = train_once(cell, mode, bs, 1, x, y, dev, k)
    _, results, stamps = train_once(cell, mode, bs, 1 + args.epochs, x, y, dev, k)
    static = dev.type == "cuda" or mode.endswith("fused")  # the trainer drops the last partial batch
    images_per_epoch = len(y) // bs * bs if static else len(y)
    ran = results[0].step_mode + ("+fused" if results[0].fused else "")
    ips = steady_rate(stamps, images_per_epoch)
    return ips, ran, None if cold is None else cold[0].curve[0].seconds - results[0].curve[0].seconds


# ------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", default="best,wide,deep,tiny", help="cells from roofline.py (all four)")
    p.add_argument("--modes", default="eager,graph,concurrent",
                   help=f"of {', '.join(MODES)} (eager,graph,concurrent: the fused ones compile every network)")
    p.add_argument("--batches", default="256,512,1024", help="batch sizes (256,512,1024)")
    p.add_argument("--concurrent", type=int, default=4, help="candidates at once in concurrent mode (4)")
    p.add_argument("--images", type=int, default=20000, help="training images per epoch (20000)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs after the first (3)")
    p.add_argument("--accuracy", action="store_true", help="also the 10-epoch CIFAR-10 accuracy check")
    p.add_argument("--acc-epochs", type=int, default=10)
    p.add_argument("--cifar-tar", default=str(DEFAULT_TAR))
    p.add_argument("--synthetic", action="store_true", help="random images instead of CIFAR-10")
    p.add_argument("--device", default="auto")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: proves the script runs (on a CPU)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    args.cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.batches = [int(b) for b in args.batches.split(",")]
    known = {name for name, *_ in CELLS}
    if set(args.cells) - known:
        p.error(f"unknown cells {sorted(set(args.cells) - known)}; choose from {sorted(known)}")
    if set(args.modes) - set(MODES):
        p.error(f"unknown modes {sorted(set(args.modes) - set(MODES))}; choose from {MODES}")
    if args.smoke:
        args.images, args.epochs, args.batches, args.acc_epochs = 512, 1, [64], 1
        args.concurrent = min(args.concurrent, 2)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dev = resolve_device(args.device)
    if dev.type != "cuda" and not args.smoke:
        print("warning: no CUDA device; the numbers below are CPU numbers and say nothing about a GPU",
              file=sys.stderr)
    peak_flops, peak_bw = measure_peaks(dev, args.smoke)
    x, y = make_data(args, "train", args.images)
    cells = {name: cell for name, _, cell, _ in CELLS}
    rows = []
    for name in args.cells:
        for bs in args.batches:
            model_row = analyse(cells[name], name=name, batch=bs)
            for mode in args.modes:
                ips, ran, compile_s = speed(cells[name], mode, bs, args, x, y, dev)
                flops, bytes_ = ips * model_row.train_flops, ips * model_row.train_bytes
                rows.append((name, bs, mode, ran, ips, flops, bytes_, compile_s))
                print(f"{name:5s} batch {bs:5d} {mode:16s} ({ran}): {ips:10,.0f} images/s  "
                      f"MFU {100 * flops / peak_flops:5.1f} %  BW {100 * bytes_ / peak_bw:5.1f} %"
                      + (f"  cold compile +{compile_s:.1f} s" if compile_s is not None else ""), flush=True)
    table = ["| cell | batch | mode | step ran as | images/s | model TFLOP/s | MFU | model GB/s | BW util "
             "| cold compile (s) |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, bs, mode, ran, ips, flops, bytes_, compile_s in rows:
        label = mode.replace("concurrent", f"concurrent x{args.concurrent}")
        table.append(f"| {name} | {bs} | {label} | {ran} | {ips:,.0f} | {flops / 1e12:.2f} | "
                     f"{100 * flops / peak_flops:.1f} % | {bytes_ / 1e9:.0f} | {100 * bytes_ / peak_bw:.1f} % | "
                     f"{'' if compile_s is None else f'{compile_s:.1f}'} |")
    acc_lines: list[str] = []
    if args.accuracy:
        n_train = 512 if args.smoke else 50000
        n_test = 256 if args.smoke else 10000
        tx, ty = make_data(args, "train", n_train)
        vx, vy = make_data(args, "test", n_test)
        best = cells["best"]
        acc_batch = 64 if args.smoke else 512
        accs = {}
        for mode in ("eager", "graph", "fused", "concurrent"):
            k = args.concurrent if mode == "concurrent" else 1
            wall, results, _ = train_once(best, mode, acc_batch, args.acc_epochs, tx, ty, dev, k, seed=0)
            tests = [evaluate(r.model, vx, vy, num_classes=10, device=dev)["accuracy"] for r in results]
            ran = results[0].step_mode + ("+fused" if results[0].fused else "")
            accs[mode] = (ran, tests)
            print(f"accuracy {mode} ({ran}): {', '.join(f'{a:.4f}' for a in tests)} ({wall:.1f} s)", flush=True)
        base = accs["eager"][1][0]
        acc_lines = ["", f"Accuracy of the best cell after {args.acc_epochs} epochs (batch {acc_batch}, seed 0; "
                     f"concurrent: {args.concurrent} candidates, seeds 0..{args.concurrent - 1}), "
                     f"trained on {len(ty):,} and tested on {len(vy):,} images:", "",
                     "| mode | step ran as | test accuracy | vs eager (points) |", "| --- | --- | ---: | ---: |"]
        for mode, (ran, tests) in accs.items():
            acc_lines.append(f"| {mode} | {ran} | {', '.join(f'{100 * a:.2f} %' for a in tests)} | "
                             f"{100 * (tests[0] - base):+.2f} (seed 0) |")
    print("\n".join(table + acc_lines))
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    section = "\n".join([
        "## Training speed by mode (issue 5)" + (" — smoke run, not a measurement" if args.smoke else ""),
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC",
        f"- device: {device_name}; measured peaks: {peak_flops / 1e12:.1f} TFLOP/s "
        f"({'bf16' if dev.type == 'cuda' else 'fp32'} matmul), {peak_bw / 1e9:.0f} GB/s (device copy)",
        f"- torch {torch.__version__}, Python {platform.python_version()}; command: `{cmd}`",
        f"- data: {'random' if args.synthetic else 'CIFAR-10 JPEG'} 3x32x32, {len(y):,} images per epoch; "
        f"images/s in steady state (epochs 2 to {1 + args.epochs} of one run, timed between epoch ends; "
        f"concurrent candidates start epoch 2 together); NB201 C=16 N=5",
        "",
        *table, *acc_lines,
    ])
    if not args.no_write:
        append_results(Path(args.out), section)
        print(f"\nappended to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
