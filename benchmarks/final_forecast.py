"""How well the search forecasts a cell's final training, which it reserves inside the budget.

The search probes the final network (``Search._probe``: two short runs, their difference per
image) with the five one-op NB201 cells, and forecasts any cell as the average of those probes
over its six edges, times a margin (``Search._final_seconds``, ``FINAL_MARGIN``). The alternative it replaced interpolated in
multiply-adds between the cheapest and the costliest cell. This script probes the same way (two
runs of ``bs x steps`` random images each, as ``Search._probe`` builds them), then really trains
``--cells`` random cells on ``--images`` random images (what the final training runs, shorter) and
prints each forecast's error against the measured seconds per image. A forecast below the
measurement is a budget overrun of that fraction of the final training.

The measurement is steady state, as a long final training is: the difference of a 1-epoch and a
(1 + ``--epochs``)-epoch run, per image of the data set per epoch (per-epoch costs such as the
shuffle are in it; what a run pays once, the CUDA graph's capture above all, is not, and is shown
in its own column). A short run's own seconds per image would let a one-off capture of a second
or so dominate a few dozen replayed steps. Each row is printed as it is measured; the table,
device, date (UTC) and command are appended to ``benchmarks/RESULTS.md`` at the end.

    python benchmarks/final_forecast.py                          # the digits demo's final network, CPU
    python benchmarks/final_forecast.py --resolution 32 --in-channels 3 --images 4096 --device cuda
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


import torch  # noqa: E402

from benchmarks._report import add_network_args, network_task, publish, run_line, timed_main  # noqa: E402
from budgetnas.search.study import FINAL_MARGIN, PROBE_STEPS_CUDA  # noqa: E402
from budgetnas.spaces.nb201 import NB201_OPS  # noqa: E402
from budgetnas.train import TrainConfig, seeded_build, train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_args(ap, 8, "input size (8: the digits demo)")
    ap.add_argument("--images", type=int, default=1438, help="training images (1438: digits train+val)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each measured training")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the trainer's choice")
    ap.add_argument("--cells", type=int, default=8, help="random cells to measure")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    dev, space, x, y = network_task(args, args.seed)
    bs = TrainConfig(batch_size=args.batch_size).resolved_batch_size(args.images, dev.type)
    steps = PROBE_STEPS_CUDA if dev.type == "cuda" else (2, 6)

    gen = torch.Generator().manual_seed(args.seed + 1)
    # As Search._probe: bs x steps random images per probe run (x[:n] of a smaller data set gave
    # fewer steps than the per-step difference divides by, and every forecast too cheap).
    probe_data = {m: (torch.randn(bs * m, args.in_channels, args.resolution, args.resolution, generator=gen),
                      torch.randint(0, 10, (bs * m,), generator=gen)) for m in steps}

    def timed(arch, xs: torch.Tensor, ys: torch.Tensor, epochs: int) -> float:
        model = seeded_build(lambda: space.build(arch, in_channels=args.in_channels, num_classes=10), 0)
        cfg = TrainConfig(epochs=epochs, batch_size=bs, warmup_epochs=0)
        return train(model, xs, ys, None, None, cfg, num_classes=10, seed=0, device=dev).device_seconds

    def probe(arch) -> float:  # as Search._probe: the difference of two short runs, per image
        a, b = (timed(arch, *probe_data[m], 1) for m in steps)
        per_step = (b - a) / (steps[1] - steps[0])
        return (per_step if per_step > 0 else b / steps[1]) / bs

    def measured(arch) -> tuple[float, float]:
        """(steady seconds per image of the data set per epoch, seconds a run pays once): the
        difference of a 1-epoch and a (1 + epochs)-epoch run."""
        short, long = timed(arch, x, y, 1), timed(arch, x, y, 1 + args.epochs)
        per_epoch = (long - short) / args.epochs
        if per_epoch <= 0:  # timer noise: the long run's plain average, an upper bound
            per_epoch = long / (1 + args.epochs)
        return per_epoch / args.images, max(0.0, short - per_epoch)

    probe(("nor_conv_3x3",) * 6)  # warm-up: first-call costs (allocator, kernels) are not a cell's
    uniform = {}
    for op in NB201_OPS:
        uniform[op] = probe((op,) * 6)
        print(f"probe {op}: {uniform[op] * 1e6:.1f} us/img", flush=True)
    macs = {op: space.cost((op,) * 6, in_channels=args.in_channels, num_classes=10,
                           resolution=args.resolution).macs for op in NB201_OPS}
    lo, hi = min(NB201_OPS, key=macs.get), max(NB201_OPS, key=macs.get)
    rng = random.Random(args.seed)
    rows, err_edge, err_macs = [], [], []
    for _ in range(args.cells):
        arch = tuple(rng.choice(NB201_OPS) for _ in range(6))
        real, once = measured(arch)
        edge = sum(uniform[o] for o in arch) / 6 * FINAL_MARGIN
        m = space.cost(arch, in_channels=args.in_channels, num_classes=10, resolution=args.resolution).macs
        by_macs = max(uniform[lo], uniform[lo] + (uniform[hi] - uniform[lo]) * (m - macs[lo]) / (macs[hi] - macs[lo]))
        by_macs *= FINAL_MARGIN
        err_edge.append(edge / real - 1)
        err_macs.append(by_macs / real - 1)
        rows.append(f"| `{space.format(arch)}` | {real * 1e6:.1f} | {once:.2f} | {edge * 1e6:.1f} | "
                    f"{err_edge[-1]:+.0%} | {by_macs * 1e6:.1f} | {err_macs[-1]:+.0%} |")
        print(rows[-1], flush=True)

    def summary(errs: list[float]) -> str:
        return f"mean {statistics.mean(errs):+.0%}, from {min(errs):+.0%} to {max(errs):+.0%}"

    section = "\n".join([
        f"## Final-training forecast per cell: edge average of one-op probes vs MAC interpolation ({dev.type})",
        "",
        run_line(__file__, argv, dev),
        "",
        f"NB201 C={args.C} N={args.N}, {args.in_channels}x{args.resolution}x{args.resolution}, batch {bs}, "
        f"{args.images} images; measured: the difference of a 1-epoch and a {1 + args.epochs}-epoch training, "
        f"per image per epoch (one-off s: what a run paid once beyond that); probes of {steps[0]} and "
        f"{steps[1]} steps of {bs} random images. One-op cells, us per image: "
        + ", ".join(f"{op} {uniform[op] * 1e6:.1f}" for op in NB201_OPS) + ".",
        "",
        "| cell | measured us/img | one-off s | edge average | error | MAC interpolation | error |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Both forecasts include the search's margin of {FINAL_MARGIN:g}x (`FINAL_MARGIN`). "
        f"Edge average (what the search uses): {summary(err_edge)}. MAC interpolation: {summary(err_macs)}. "
        "A negative error is a forecast too cheap: the final training overruns its reservation by that fraction.",
    ])
    publish(section, args.out)
    return 0


if __name__ == "__main__":
    timed_main(main)
