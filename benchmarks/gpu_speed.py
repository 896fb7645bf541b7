#!/usr/bin/env python
"""Training speed of NB201 networks in each of the trainer's modes, against the device's peaks.

Issue 5's evidence. For NB201's best CIFAR-10 cell and a wide, a deep and a tiny cell (the cells
of ``roofline.py``; C=16, N=5, 10 classes, 3x32x32), at several batch sizes, it reports training
images/s in these modes, all through ``budgetnas.train.train`` with its augmentation, schedule,
label smoothing, clipping and flips (what a search trial on CIFAR-10 really runs):

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
the end of the last one. A single candidate's row also gives the range of its timed epochs'
rates (each epoch on its own): a spread, where a row near a target needs one. The "compile"
column (fused modes) is what compiling took, as the trainer timed it (``TrainResult.compile_seconds``;
the most of the candidates'): the first fused run of a process finds inductor's cache cold, later
ones still trace the network anew (dynamo and AOTAutograd).
Against the peaks measured here and now (after half a second of warm-up, so that the clocks have
ramped up): a bf16 matmul (8192^3) for FLOP/s and a 1 GiB device-to-device copy for memory
bandwidth. FLOPs per training image = 3 x 2 x multiply-adds, and bytes per training image = the
bf16 byte model of ``roofline.py``, unfused for the unfused modes and fused (BatchNorm and ReLU
folded into the convolutions' reads and writes) for the fused ones; so "MFU" and "BW util" are model
FLOP and model byte utilisation. A "BW util" over 100 % means the network moved fewer bytes than
the model counts (more fusion, or activations served from the 50 MB L2 cache), not a broken clock.

``--accuracy`` also trains the best cell for ``--acc-epochs`` (10) epochs on the CIFAR-10 JPEG
train set (50,000) in eager, graph, fused and concurrent mode (``--acc-modes``), at batch 512, and
tests it on the 10,000 test images: the speed must not cost accuracy (issue 5: within 0.3 points of
eager). One run's accuracy moves by about that much with its seed alone, so eager is trained at
``--eager-seeds`` (0 and 1; each seed's row written as it is measured) and the spread between them
is printed as the noise floor; each mode is compared by its mean over its seeds (concurrent: its
candidates, seeds 0..k-1) with eager's mean, and the row says whether it is within 0.3 points. Where
eager is not among ``--acc-modes`` (the GPU pack runs it in a stage of its own), eager's accuracies
come from an earlier run's ``--rows`` file (same cell, network, batch, epochs and images). A claim
of speed at another batch size (1024) is not covered by this check, which runs at 512 only.

Every row is written as soon as it is measured: printed (the log), appended to ``--out`` (the
section's heading and table head first, then one table row at a time) and, with ``--rows``, to a
JSON-lines file. A run killed by a time limit (SIGTERM) keeps what it measured, and its section
ends with a line saying that it was cut off. ``-C``/``-N`` change the network (a small one proves
the wiring on a CPU); on a CPU the graph modes train eagerly (the trainer falls back, and a line
says so), and the fused modes compile inductor's C++ kernels (slow: a minute or so per network).

Examples::

    python benchmarks/gpu_speed.py                        # the unfused table, on the GPU machine
    python benchmarks/gpu_speed.py --cells best --batches 512,1024 --modes fused,concurrent-fused
    python benchmarks/gpu_speed.py --accuracy             # + the 10-epoch accuracy check
    python benchmarks/gpu_speed.py --smoke --synthetic    # tiny run on a CPU, proves it works
    python benchmarks/gpu_speed.py --modes none --accuracy --acc-modes eager --rows rows.jsonl   # eager's accuracy alone
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
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
NETWORK = {"C": 16, "N": 5}  # set from -C/-N by main


def build(cell: str, seed: int) -> torch.nn.Module:
    space = NB201Space(C=NETWORK["C"], N=NETWORK["N"])
    return seeded_build(lambda: space.build(space.parse(cell), in_channels=3, num_classes=10), seed)


def train_once(cell: str, mode: str, bs: int, epochs: int, x: torch.Tensor, y: torch.Tensor,
               dev: torch.device, k: int, seed: int = 0, val: tuple | None = None
               ) -> tuple[float, list, list[list[float]]]:
    """Wall seconds to train ``k`` candidates (1 unless concurrent), their results, and for each
    the ``time.perf_counter()`` at the start of epoch 2 and at the end of every later epoch."""
    step_mode = "eager" if mode == "eager" else "graph"
    # (flips on, as a search on CIFAR-10 turns them on: TrainConfig's default is off; review H, 2026-12-07)
    cfg = TrainConfig(epochs=epochs, batch_size=bs, step_mode=step_mode, fuse=mode.endswith("fused"), hflip=True)
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


def epoch_rates(stamps: list[list[float]], images_per_epoch: int) -> list[float]:
    """One candidate's images/s in each of its timed epochs, from its stamps (see :func:`train_once`)."""
    return [images_per_epoch / (b - a) for a, b in zip(stamps[0], stamps[0][1:]) if b > a] if len(stamps) == 1 else []


def speed(cell: str, mode: str, bs: int, args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor,
          dev: torch.device) -> tuple[float, str, float | None, list[float]]:
    """Steady-state training images/s (aggregate over the candidates), how the step ran, for the
    fused modes the seconds compiling took (the trainer's own timing; the most of the candidates'),
    and a single candidate's images/s in each timed epoch. (A separate untimed fused run, to time
    a cold compilation, cost a whole training per row: it is gone; the first fused row of a process
    is the cold one.)"""
    k = args.concurrent if mode.startswith("concurrent") else 1
    _, results, stamps = train_once(cell, mode, bs, 1 + args.epochs, x, y, dev, k)
    images_per_epoch = len(y) // bs * bs  # the trainer drops the last partial batch (every device, version 3)
    ran = results[0].step_mode + ("+fused" if results[0].fused else "")
    ips = steady_rate(stamps, images_per_epoch)
    compiled = max(r.compile_seconds for r in results) if mode.endswith("fused") else None
    return ips, ran, compiled, epoch_rates(stamps, images_per_epoch)


# ------------------------------------------------------------------------------------ output
class Sink:
    """Where results go as soon as they are measured: the results file (a section written line by
    line: its heading and table head first, then each row) and a JSON-lines file, so that a run
    killed by its time limit keeps every row it measured. ``cut`` ends a section cut off."""

    def __init__(self, out: Path | None, rows: Path | None) -> None:
        self.out, self.rows, self.started, self.written = out, rows, False, 0

    def lines(self, *lines: str) -> None:
        if self.out is None:
            return
        if not self.started:  # the section's first line: the file (or the header) as append_results makes it
            append_results(self.out, lines[0])
            self.started, lines = True, lines[1:]
        with self.out.open("a") as fh:
            fh.write("".join(line + "\n" for line in lines))

    def record(self, **fields) -> None:
        self.written += 1
        if self.rows is not None:
            self.rows.parent.mkdir(parents=True, exist_ok=True)
            with self.rows.open("a") as fh:
                fh.write(json.dumps(fields) + "\n")

    def cut(self, why: str) -> None:
        """Say at the end of the section that the run stopped before its end (and why)."""
        if self.out is not None and self.started:
            with self.out.open("a") as fh:
                fh.write(f"\n**Cut off** ({why}) after {self.written} measured rows: the rows above are all "
                         "that this run measured.\n")


def earlier_eager(rows: Path | None, key: dict) -> dict[int, float]:
    """Eager's test accuracy by seed from an earlier run's ``--rows`` file, measured as ``key``
    says (cell, network, batch, epochs, images, device); each seed's last row ({} if none)."""
    found: dict[int, float] = {}
    if rows is None or not rows.exists():
        return found
    for line in rows.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("kind") == "accuracy" and r.get("mode") == "eager" and all(r.get(k) == v for k, v in key.items()):
            found[int(r.get("seed", 0))] = r["tests"][0]
    return found


TOLERANCE_POINTS = 0.3  # issue 5: a faster mode's accuracy within this of eager's


def verdict(tests: list[float], eager: dict[int, float]) -> tuple[float | None, str]:
    """(points between the mean of ``tests`` and eager's mean accuracy, "yes"/"no": within
    TOLERANCE_POINTS), or (None, "-") without eager's accuracy."""
    if not eager:
        return None, "-"
    delta = 100 * (sum(tests) / len(tests) - sum(eager.values()) / len(eager))
    return delta, "yes" if abs(delta) <= TOLERANCE_POINTS else "no"


def device_label(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name(f", {torch.get_num_threads()} torch threads")


def fallback_note(mode: str, ran: str, dev: torch.device, said: set) -> None:
    """Say once per mode when it ran otherwise than named (on a CPU: no CUDA graphs)."""
    wanted = "graph" if mode != "eager" else "eager"
    if ran.split("+")[0] != wanted and mode not in said:
        said.add(mode)
        why = ("the capture failed (the trainer's warning above says why)" if dev.type == "cuda"
               else "CUDA graphs need a CUDA device")
        print(f"note: mode {mode} ran as '{ran}' on {dev.type}: {why}, so the trainer fell back to eager "
              "steps (this row says nothing about graph replay)", flush=True)


# ------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", default="best,wide,deep,tiny", help="cells from roofline.py (all four)")
    p.add_argument("--modes", default="eager,graph,concurrent",
                   help=f"of {', '.join(MODES)} (eager,graph,concurrent: the fused ones compile every network); "
                        "'none' for no speed rows (--accuracy alone)")
    p.add_argument("--batches", default="256,512,1024", help="batch sizes (256,512,1024)")
    p.add_argument("--concurrent", type=int, default=4, help="candidates at once in concurrent mode (4)")
    p.add_argument("--images", type=int, default=20000, help="training images per epoch (20000)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs after the first (3)")
    p.add_argument("-C", type=int, default=16, help="channels of the network (16)")
    p.add_argument("-N", type=int, default=5, help="cells per stage (5)")
    p.add_argument("--accuracy", action="store_true", help="also the 10-epoch CIFAR-10 accuracy check")
    p.add_argument("--acc-epochs", type=int, default=10)
    p.add_argument("--acc-modes", default="eager,graph,fused,concurrent",
                   help="modes of the accuracy check (eager,graph,fused,concurrent)")
    p.add_argument("--eager-seeds", default="0,1",
                   help="seeds eager is trained at in the accuracy check (0,1): their spread is the noise floor")
    p.add_argument("--acc-concurrent", type=int, default=None,
                   help="candidates at once in the accuracy check's concurrent mode (default --concurrent)")
    p.add_argument("--cifar-tar", default=str(DEFAULT_TAR))
    p.add_argument("--synthetic", action="store_true", help="random images instead of CIFAR-10")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (--smoke: 1)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: proves the script runs (on a CPU)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--rows", default=None, help="also append every measured row to this JSON-lines file")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    args.cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    args.modes = [] if args.modes.strip() == "none" else [m.strip() for m in args.modes.split(",") if m.strip()]
    args.acc_modes = [m.strip() for m in args.acc_modes.split(",") if m.strip()]
    args.batches = [int(b) for b in args.batches.split(",")]
    args.eager_seeds = [int(v) for v in args.eager_seeds.split(",") if v.strip()]
    known = {name for name, *_ in CELLS}
    if set(args.cells) - known:
        p.error(f"unknown cells {sorted(set(args.cells) - known)}; choose from {sorted(known)}")
    if set(args.modes) - set(MODES):
        p.error(f"unknown modes {sorted(set(args.modes) - set(MODES))}; choose from {MODES}")
    if set(args.acc_modes) - {"eager", "graph", "fused", "concurrent"}:
        p.error("--acc-modes: of eager, graph, fused, concurrent")
    if not args.modes and not args.accuracy:
        p.error("--modes none measures nothing without --accuracy")
    if args.smoke:
        args.images, args.epochs, args.batches, args.acc_epochs = 512, 1, [64], 1
        args.concurrent = min(args.concurrent, 2)
        args.threads = args.threads or 1
    if args.acc_concurrent is None:
        args.acc_concurrent = args.concurrent
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    NETWORK.update(C=args.C, N=args.N)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    if dev.type != "cuda" and not args.smoke:
        print("warning: no CUDA device; the numbers below are CPU numbers and say nothing about a GPU",
              file=sys.stderr)
    sink = Sink(None if args.no_write else Path(args.out), Path(args.rows) if args.rows else None)
    # A time limit's SIGTERM: say in the section that it was cut off, then go (threads and all).
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame) -> None:
            sink.cut(f"{signal.Signals(signum).name}, the stage's time limit")
            print(f"\n{signal.Signals(signum).name}: cut off after {sink.written} measured rows", flush=True)
            os._exit(128 + signum)
        signal.signal(signal.SIGTERM, on_term)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    net = f"NB201 C={args.C} N={args.N}"
    said: set = set()
    title = "## Training speed by mode (issue 5)" + (" — smoke run, not a measurement" if args.smoke else "")
    head = [
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC",
        "- device: " + device_label(dev),
        f"- torch {torch.__version__}, Python {platform.python_version()}; command: `{cmd}`",
        "- rows are written as each is measured: a run cut off by its time limit says so at its end",
    ]
    cells = {name: cell for name, _, cell, _ in CELLS}
    n_rows = 0
    if args.modes:
        peak_flops, peak_bw = measure_peaks(dev, args.smoke)
        x, y = make_data(args, "train", args.images)
        head[1] += (f"; measured peaks: {peak_flops / 1e12:.1f} TFLOP/s ({'bf16' if dev.type == 'cuda' else 'fp32'} "
                    f"matmul), {peak_bw / 1e9:.0f} GB/s (device copy)")
        sink.lines(title, "", *head,
                   f"- data: {'random' if args.synthetic else 'CIFAR-10 JPEG'} 3x32x32, {len(y):,} images per epoch; "
                   f"images/s in steady state (epochs 2 to {1 + args.epochs} of one run, timed between epoch ends; "
                   f"concurrent candidates start epoch 2 together); {net}",
                   "",
                   "| cell | batch | mode | step ran as | images/s | per epoch (min-max) | model TFLOP/s | MFU "
                   "| model GB/s | BW util | compile (s) |",
                   "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name in args.cells:
            for bs in args.batches:
                model_row = analyse(cells[name], name=name, batch=bs, C=args.C, N=args.N)
                for mode in args.modes:
                    ips, ran, compile_s, per_epoch = speed(cells[name], mode, bs, args, x, y, dev)
                    fallback_note(mode, ran, dev, said)
                    # (the fused modes' bytes by the fused model: BatchNorm and ReLU read and write nothing apart)
                    per_image = model_row.train_bytes_fused if ran.endswith("+fused") else model_row.train_bytes
                    flops, bytes_ = ips * model_row.train_flops, ips * per_image
                    spread = f"{min(per_epoch):,.0f}-{max(per_epoch):,.0f}" if per_epoch else "-"
                    print(f"{name:5s} batch {bs:5d} {mode:16s} ({ran}): {ips:10,.0f} images/s (per epoch {spread})  "
                          f"MFU {100 * flops / peak_flops:5.1f} %  BW {100 * bytes_ / peak_bw:5.1f} %"
                          + (f"  compile {compile_s:.1f} s" if compile_s is not None else ""), flush=True)
                    label = mode.replace("concurrent", f"concurrent x{args.concurrent}")
                    sink.lines(f"| {name} | {bs} | {label} | {ran} | {ips:,.0f} | {spread} | {flops / 1e12:.2f} | "
                               f"{100 * flops / peak_flops:.1f} % | {bytes_ / 1e9:.0f} | {100 * bytes_ / peak_bw:.1f} % | "
                               f"{'' if compile_s is None else f'{compile_s:.1f}'} |")
                    sink.record(kind="speed", cell=name, C=args.C, N=args.N, batch=bs, mode=mode, ran=ran,
                                concurrent=args.concurrent if mode.startswith("concurrent") else 1,
                                images_per_s=ips, per_epoch_images_per_s=per_epoch, mfu=flops / peak_flops,
                                bw_util=bytes_ / peak_bw, bytes_model="fused" if ran.endswith("+fused") else "unfused",
                                compile_s=compile_s, images=len(y), epochs=args.epochs,
                                synthetic=args.synthetic, device=device_label(dev), smoke=args.smoke)
                    n_rows += 1
    if args.accuracy:
        n_train = 512 if args.smoke else 50000
        n_test = 256 if args.smoke else 10000
        tx, ty = make_data(args, "train", n_train)
        vx, vy = make_data(args, "test", n_test)
        best = cells["best"]
        acc_batch = 64 if args.smoke else 512
        k_acc = args.acc_concurrent
        key = dict(cell="best", C=args.C, N=args.N, batch=acc_batch, epochs=args.acc_epochs,
                   n_train=len(ty), n_test=len(vy), synthetic=args.synthetic, device=device_label(dev))
        eager = {} if "eager" in args.acc_modes else earlier_eager(sink.rows, key)
        where = ("this run" if "eager" in args.acc_modes else
                 f"an earlier run's rows (seeds {', '.join(map(str, sorted(eager)))})" if eager
                 else "not measured: no eager row in --rows")
        if not args.modes:
            sink.lines(title + " — accuracy", "", *head, f"- network: {net}")
        sink.lines("", f"Accuracy of the best cell after {args.acc_epochs} epochs (batch {acc_batch}; concurrent: "
                   f"{k_acc} candidates, seeds 0..{k_acc - 1}; eager at seeds {', '.join(map(str, args.eager_seeds))}), "
                   f"trained on {len(ty):,} and tested on {len(vy):,} {'random' if args.synthetic else 'CIFAR-10'} "
                   f"images. Each mode's mean over its seeds against eager's mean (eager's accuracy: {where}); "
                   f"issue 5 asks for a difference within {TOLERANCE_POINTS} points:", "",
                   "| mode | step ran as | seeds | test accuracy | vs eager's mean (points) "
                   f"| within {TOLERANCE_POINTS}? | wall s |",
                   "| --- | --- | --- | ---: | ---: | :---: | ---: |")
        for mode in args.acc_modes:
            k = k_acc if mode == "concurrent" else 1
            for seed in (args.eager_seeds if mode == "eager" else [0]):
                wall, results, _ = train_once(best, mode, acc_batch, args.acc_epochs, tx, ty, dev, k, seed=seed)
                tests = [evaluate(r.model, vx, vy, num_classes=10, device=dev)["accuracy"] for r in results]
                ran = results[0].step_mode + ("+fused" if results[0].fused else "")
                fallback_note(mode, ran, dev, said)
                seeds = list(range(seed, seed + k))
                print(f"accuracy {mode} ({ran}), seeds {seeds}: {', '.join(f'{a:.4f}' for a in tests)} ({wall:.1f} s)",
                      flush=True)
                if mode == "eager":
                    eager[seed] = tests[0]
                    delta, within = None, "(baseline)"
                else:
                    delta, within = verdict(tests, eager)
                sink.lines(f"| {mode} | {ran} | {', '.join(map(str, seeds))} | "
                           f"{', '.join(f'{100 * a:.2f} %' for a in tests)} | "
                           f"{'-' if delta is None else f'{delta:+.2f}'} | {within} | {wall:.0f} |")
                sink.record(kind="accuracy", mode=mode, ran=ran, seed=seed, seeds=seeds, tests=tests, wall_s=wall,
                            concurrent=k, vs_eager_points=delta, within_tolerance=within == "yes",
                            eager_seeds=sorted(eager), smoke=args.smoke, **key)
                n_rows += 1
        if len(eager) > 1:
            floor = 100 * (max(eager.values()) - min(eager.values()))
            sink.lines("", f"Noise floor: eager's accuracy moved by {floor:.2f} points between seeds "
                       f"{', '.join(map(str, sorted(eager)))} alone; a difference between modes smaller than that "
                       "is not evidence either way.")
            print(f"eager's spread over seeds {sorted(eager)}: {floor:.2f} points (the noise floor)", flush=True)
    if sink.out is not None:
        print(f"\nappended {n_rows} rows to {sink.out}" + (f" and {sink.rows}" if sink.rows else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
