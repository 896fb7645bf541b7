#!/usr/bin/env python
"""Training throughput (images/s) of NB201's best CIFAR-10 cell: our trainer vs a plain loop.

The network is NAS-Bench-201's skeleton (C=16, N=5, 10 classes, 3x32x32 inputs) around the cell
that is best on CIFAR-10 in the benchmark (row 6111 of the NATS-Bench table)::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|

Two ways to train it on the same images:

(a) ``budgetnas.train.train``: the whole dataset on the device, batched random-crop + flip
    augmentation on the device, bf16 autocast and channels_last on CUDA, SGD with the trainer's
    schedule, gradient clipping and label smoothing (more work per step than the plain loop).
(b) a plain PyTorch loop: fp32, a ``TensorDataset`` on the CPU, ``DataLoader(shuffle=True)``
    with ``num_workers`` 0 or 4 (``pin_memory`` on CUDA), ``.to(device)`` per batch, SGD, no
    autocast and no augmentation (a typical loop would also augment per sample on the CPU, which
    is slower still, so the speed-ups below are conservative).

Each (mode, batch size) trains a fresh model: warm-up epochs first (cuDNN's algorithm search, the
allocator), outside the timed region, then timed epochs, each between CUDA events recorded after a
synchronize (``time.perf_counter`` on the CPU); the table gives the median. Images come from the
CIFAR-10 JPEG tarball (a class-balanced subset of its train/ folder), or random ones with
``--synthetic``. The table is printed and appended to ``benchmarks/RESULTS.md``.

Examples::

    python benchmarks/throughput.py                      # 10k CIFAR-10 images, batches 256,512,1024
    python benchmarks/throughput.py --smoke              # tiny CPU run
"""

from __future__ import annotations

import argparse
import io
import platform
import shlex
import signal
import statistics
import sys
import tarfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _report import append_results, cpu_name  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from budgetnas.data import channel_stats, from_arrays, to_tensor  # noqa: E402
from budgetnas.errors import DataError  # noqa: E402
from budgetnas.spaces import create_space  # noqa: E402
from budgetnas.train import TrainConfig, resolve_device, seeded_build, train  # noqa: E402

BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
DEFAULT_TAR = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

# ------------------------------------------------------------------------------------ data
def load_cifar_subset(path: Path, n: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (uint8 N x 32 x 32 x 3) and labels from <split>/<class>/*.jpg, balanced by class.

    Streams the tarball once and decodes only the images it keeps; nothing is written to disk.
    """
    from PIL import Image

    per_class = -(-n // 10)
    kept: dict[str, list[np.ndarray]] = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            parts = [p for p in PurePosixPath(member.name).parts if p not in (".", "")]
            if not member.isfile() or len(parts) != 3 or parts[0] != split:
                continue
            if not parts[2].lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            images = kept.setdefault(parts[1], [])
            if len(images) >= per_class:
                if len(kept) == 10 and all(len(v) >= per_class for v in kept.values()):
                    break
                continue
            fh = tar.extractfile(member)
            assert fh is not None
            with Image.open(io.BytesIO(fh.read())) as img:
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
    if not kept:
        raise DataError(f"{path} holds no {split}/<class>/*.jpg images; is it the CIFAR-10 JPEG tarball?")
    classes = sorted(kept)
    x = np.stack([img for c in classes for img in kept[c]])
    y = np.concatenate([np.full(len(kept[c]), i, np.int64) for i, c in enumerate(classes)])
    keep = np.random.default_rng(0).permutation(len(y))[:n]
    return x[keep], y[keep]


def make_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Normalised float (N, 3, 32, 32) images and int64 labels, and where they came from."""
    if args.synthetic:
        gen = torch.Generator().manual_seed(0)
        return (torch.randn(args.images, 3, 32, 32, generator=gen),
                torch.randint(0, 10, (args.images,), generator=gen), "synthetic (random) 3x32x32")
    tar = Path(args.cifar_tar)
    if not tar.is_file():
        raise SystemExit(f"no CIFAR-10 tarball at {tar}: give --cifar-tar PATH, or --synthetic for random data")
    x, y = load_cifar_subset(tar, args.images)
    data = from_arrays(x, y, classes=[str(i) for i in range(10)], name="cifar10-subset")
    mean, std = channel_stats(data.images)
    return (to_tensor(data, mean=mean, std=std), torch.tensor(data.labels, dtype=torch.int64),
            f"CIFAR-10 JPEG, {len(y)} train images ({tar.name})")


# ------------------------------------------------------------------------------------ timing
class EpochClock:
    """Marks epoch boundaries: CUDA events on a GPU (after a synchronize), perf_counter on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self.marks: list = []

    def mark(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    def durations(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return [a.elapsed_time(b) / 1000 for a, b in zip(self.marks, self.marks[1:])]
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


def build_model(C: int, N: int, seed: int = 0) -> torch.nn.Module:
    space = create_space("nb201", C=C, N=N)
    arch = space.parse(BEST_CELL)
    return seeded_build(lambda: space.build(arch, in_channels=3, num_classes=10), seed)


def trainer_epochs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, warmup: int,
                   timed: int, device: torch.device) -> list[float]:
    """Seconds of each timed epoch of ``budgetnas.train.train`` (one run, warm-up epochs first).

    The trainer synchronises once at the end of every epoch (it reads the epoch's loss), and calls
    ``on_epoch`` right after, so marks taken there bound whole epochs exactly.
    """
    clock = EpochClock(device)
    seen = [0]

    def on_epoch(_record: object) -> bool:
        seen[0] += 1
        if seen[0] >= warmup:  # the mark after the last warm-up epoch starts the timed region
            clock.mark()
        return False

    cfg = TrainConfig(epochs=warmup + timed, batch_size=batch, hflip=True)
    if warmup == 0:
        clock.mark()
    train(model, x, y, None, None, cfg, num_classes=10, seed=0, device=device, on_epoch=on_epoch)
    return clock.durations()


def plain_epochs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, workers: int,
                 warmup: int, timed: int, device: torch.device) -> list[float]:
    """Seconds of each timed epoch of a textbook fp32 loop fed by a DataLoader from the CPU."""
    cuda = device.type == "cuda"
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, num_workers=workers,
                        pin_memory=cuda, persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(0))
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1 * batch / 256, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)

    def one_epoch() -> None:
        model.train()
        for xb, yb in loader:
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    for _ in range(warmup):
        one_epoch()
    clock = EpochClock(device)
    clock.mark()
    for _ in range(timed):
        one_epoch()
        clock.mark()
    return clock.durations()


# ------------------------------------------------------------------------------------ report
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name(f", torch threads {torch.get_num_threads()}")


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cifar-tar", default=str(DEFAULT_TAR), help="the CIFAR-10 JPEG tarball")
    p.add_argument("--synthetic", action="store_true", help="random images instead of CIFAR-10")
    p.add_argument("--images", type=int, default=None, help="images per epoch (default 10000; --smoke 512)")
    p.add_argument("--batch-sizes", default=None, help="comma separated (default 256,512,1024; --smoke 128)")
    p.add_argument("--workers", default=None, help="DataLoader workers of the plain loop, comma "
                                                   "separated (default 0,4; --smoke 0)")
    p.add_argument("--epochs", type=int, default=None, help="timed epochs (default 5; --smoke 1)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up epochs before them")
    p.add_argument("-C", type=int, default=16)
    p.add_argument("-N", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; --smoke: 1, since on a small shared CPU "
                        "oversubscribed threads run many times slower)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--smoke", action="store_true", help="tiny CPU settings: 512 images, batch 128, "
                                                        "1 timed epoch, no DataLoader workers")
    args = p.parse_args(argv)
    args.images = args.images or (512 if args.smoke else 10000)
    args.batch_sizes = ints(args.batch_sizes or ("128" if args.smoke else "256,512,1024"))
    args.workers = ints(args.workers or ("0" if args.smoke else "0,4"))
    args.epochs = args.epochs or (1 if args.smoke else 5)
    if args.threads is None and args.smoke:
        args.threads = 1
    return args


class _Cut(Exception):
    """A signal (a time limit) stopped the measurements."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.zeros(1, device=device)
    name = device_name(device)
    x, y, source = make_data(args)
    params = sum(p.numel() for p in build_model(args.C, args.N).parameters())

    rows: list[tuple[str, int, float]] = []  # (mode, batch, images/s)
    runs: list[tuple[str, Callable[[int], list[float]]]] = [
        ("budgetnas trainer (bf16, channels_last, on-device data)" if device.type == "cuda"
         else "budgetnas trainer (fp32 on CPU, on-device data)",
         lambda bs: trainer_epochs(build_model(args.C, args.N), x, y, bs, args.warmup, args.epochs, device)),
    ]
    for w in args.workers:
        runs.append((f"plain loop (fp32, DataLoader, {w} workers)",
                     lambda bs, w=w: plain_epochs(build_model(args.C, args.N), x, y, bs, w, args.warmup,
                                                  args.epochs, device)))
    # A time limit (gpu_checks.sh runs this under `timeout`) sends SIGTERM: the rows measured by
    # then are still written, marked as cut short, instead of the whole section being lost.
    cut = None
    signalled: list[str] = []

    def on_term(signum: int, _frame: object) -> None:
        signalled.append(signal.Signals(signum).name)
        raise _Cut(signalled[0])

    signal.signal(signal.SIGTERM, on_term)
    try:
        print(f"device: {name}; torch {torch.__version__}; {source}; NB201 C={args.C} N={args.N} "
              f"({params:,} parameters)", file=sys.stderr, flush=True)
        for bs in args.batch_sizes:
            for mode, fn in runs:
                try:
                    times = fn(bs)
                except torch.cuda.OutOfMemoryError:
                    print(f"  {mode} batch {bs}: out of memory", file=sys.stderr)
                    torch.cuda.empty_cache()
                    continue
                # The trainer drops the last partial batch (on every device since trainer version 3):
                # count only the images it trained on (the plain loop trains on all of them).
                trained = len(y) // bs * bs if not mode.startswith("plain") else len(y)
                ips = trained / statistics.median(times)
                rows.append((mode, bs, ips))
                print(f"  {mode} batch {bs}: {ips:,.0f} images/s (epochs: "
                      f"{', '.join(f'{t:.3f}' for t in times)} s)", file=sys.stderr)
    except (_Cut, KeyboardInterrupt, RuntimeError) as e:
        # (`timeout` signals the whole process group: DataLoader workers die too, and torch then
        # raises RuntimeError "worker ... is killed by signal" from its SIGCHLD handler, in place
        # of or on top of the _Cut)
        if isinstance(e, RuntimeError) and not signalled and "killed by signal" not in str(e):
            raise
        why = signalled[0] if signalled else "SIGINT"  # (a _Cut carries the first signal's name)
        cut = (f"**cut short** by {why} (a time limit) after {len(rows)} measurement(s): the other modes and "
               "batch sizes were not measured")
        print(cut, file=sys.stderr)
    finally:
        # (cut: a SIGTERM still on its way, as the workers' deaths can come first, must not stop the
        # writing of what was measured; `timeout -k` kills it if it hangs)
        signal.signal(signal.SIGTERM, signal.SIG_IGN if cut else signal.SIG_DFL)

    lines = ["| mode | batch | images/s (median of epochs) | speed-up vs best plain loop at this batch |",
             "| --- | ---: | ---: | ---: |"]
    for mode, bs, ips in rows:
        plain = [r[2] for r in rows if r[1] == bs and r[0].startswith("plain")]
        speed = f"{ips / max(plain):.2f}x" if plain else "-"
        lines.append(f"| {mode} | {bs} | {ips:,.0f} | {speed} |")
    table = "\n".join(lines)
    # Issue 2's target: our trainer at least 3x the plain loop, at the batch the trainer picks for a
    # large dataset on this device (512 on CUDA), against the faster plain loop at that batch.
    default_bs = TrainConfig().resolved_batch_size(10 ** 6, device.type)
    both = sorted({r[1] for r in rows if r[0].startswith("plain")} & {r[1] for r in rows if not r[0].startswith("plain")})
    if both:
        bs = default_bs if default_bs in both else both[-1]
        ours = max(r[2] for r in rows if r[1] == bs and not r[0].startswith("plain"))
        ratio = ours / max(r[2] for r in rows if r[1] == bs and r[0].startswith("plain"))
        verdict = (f"target >= 3x the best plain loop, at batch {bs}"
                   + (" (the trainer's default here)" if bs == default_bs else
                      f" (the trainer's default here, {default_bs}, was not run)")
                   + f": {ratio:.2f}x, **{'met' if ratio >= 3 else 'not met'}**"
                   + ("" if device.type == "cuda" else " (on a CPU: the target is for a GPU)"))
    else:
        verdict = "target >= 3x the plain loop: not measured (no batch size ran in both modes)"
    table += "\n\n" + verdict + (f"\n\n{cut}" if cut else "")
    print(table)

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = ("## Training throughput, NB201 best cell — CPU smoke run (not the GPU targets; GPU numbers "
             "pending)" if args.smoke else "## Training throughput, NB201 best cell")
    section = f"""{title}

- date: {date}
- device: {name}
- torch {torch.__version__}, Python {platform.python_version()}
- command: `python {shlex.join(sys.argv)}`
- network: NB201 C={args.C} N={args.N}, 10 classes, 3x32x32, {params:,} parameters, cell `{BEST_CELL}`
- data: {source}; {args.warmup} warm-up epoch(s) untimed, median of {args.epochs} timed epoch(s) of {len(y)} images
- the trainer also augments (random crop + flip), clips gradients and smooths labels; the plain loop does none of that

{table}
"""
    append_results(Path(args.out), section)
    print(f"appended to {args.out}", file=sys.stderr)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
