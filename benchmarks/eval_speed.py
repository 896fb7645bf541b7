"""How fast a network is evaluated, by evaluation batch size, beside what a training step costs.

Every epoch of every trial scores the validation split, and the final model is tested once on the
test split: on a CPU these forward passes cost a good share of what training does, and their
batch size (``trainer.eval_batch_size``) matters. This script times ``evaluate`` on
``--images`` random images at each batch size in ``--batches`` for the one-op NB201 cells (the
extremes of cost) of a network (``-C``/``-N`` at ``--resolution``), and training at the trainer's
own batch size in steady state (the difference of a short run and one an epoch of ``--images``
longer, at least 20 steps longer on CUDA, per image: a single run's time would count its eager
warm-up and CUDA-graph capture, which on a GPU cost as much as a few dozen replayed steps), and
prints microseconds per image and the ratio of evaluating to training an image. The search reserves the final model's test inside the budget with that ratio
(``study.EVAL_FRACTION``), so its largest value here is the one to check against. Appends the
table, device, date (UTC) and command to ``benchmarks/RESULTS.md``.

    python benchmarks/eval_speed.py                                  # the final network at 28 px, CPU
    python benchmarks/eval_speed.py -C 8 -N 1 --resolution 16        # a search network
    python benchmarks/eval_speed.py --resolution 32 --in-channels 3 --device cuda --batches 256,1024,4096
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from benchmarks._report import add_network_args, network_task, publish, run_line, timed_main  # noqa: E402
from budgetnas.search.study import EVAL_FRACTION  # noqa: E402
from budgetnas.spaces.nb201 import NB201_OPS  # noqa: E402
from budgetnas.train import TrainConfig, eval_batch_size, evaluate, seeded_build, train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_args(ap, 28, "input size (28: Fashion-MNIST)")
    ap.add_argument("--images", type=int, default=1024, help="images evaluated (training: the long run is an epoch of them longer than the short one)")
    ap.add_argument("--batches", default="16,32,64,128,256,1024", help="evaluation batch sizes, comma-separated")
    ap.add_argument("--repeats", type=int, default=2, help="timed evaluations per batch size (the best is kept)")
    args = ap.parse_args(argv)
    dev, space, x, y = network_task(args, 0)
    batches = [int(b) for b in args.batches.split(",")]
    bs = TrainConfig().resolved_batch_size(args.images, dev.type)

    # Training in steady state: the difference of two runs, `short` steps and `long` steps, on
    # bs x steps images each (the images tiled: as many steps as the run is long).
    cuda = dev.type == "cuda"
    short = 4 if cuda else 2
    long = short + max(args.images // bs, 20 if cuda else 1)

    def tiled(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(bs * steps) % len(y)
        return x[idx], y[idx]
    runs = {m: tiled(m) for m in (short, long)}

    def trained_for(arch, steps: int):
        model = seeded_build(lambda: space.build(arch, in_channels=args.in_channels, num_classes=10), 0)
        cfg = TrainConfig(epochs=1, batch_size=bs, warmup_epochs=0)
        return train(model, *runs[steps], None, None, cfg, num_classes=10, seed=0, device=dev)

    trained_for(("nor_conv_3x3",) * 6, short)  # warm-up: first-call costs (allocator, kernels) are not the first cell's
    rows, ratios = [], []
    for op in NB201_OPS:
        arch = (op,) * 6
        a = trained_for(arch, short).device_seconds
        trained = trained_for(arch, long)
        per_step = (trained.device_seconds - a) / (long - short)
        if per_step <= 0:  # timer noise: the long run's plain average, an upper bound
            per_step = trained.device_seconds / long
        train_us = per_step / bs * 1e6
        per_batch = {}
        for b in batches:
            evaluate(trained.model, x[:b], y[:b], num_classes=10, device=dev, batch_size=b)  # warm-up
            best = float("inf")
            for _ in range(args.repeats):  # (evaluate's logits come back to the CPU: each ends synced)
                t0 = time.perf_counter()
                evaluate(trained.model, x, y, num_classes=10, device=dev, batch_size=b)
                best = min(best, time.perf_counter() - t0)
            per_batch[b] = best / args.images * 1e6
        fastest = min(per_batch, key=per_batch.get)
        ratios.append(min(per_batch.values()) / train_us)
        rows.append(f"| {op} | {train_us:.1f} | " + " | ".join(
            (f"**{per_batch[b]:.1f}**" if b == fastest else f"{per_batch[b]:.1f}") for b in batches)
            + f" | {per_batch[fastest] / train_us:.2f} |")
        print(rows[-1], flush=True)  # (in the log as measured: a run cut off by its limit writes no section)

    default = eval_batch_size(dev.type, trained.model, tuple(x.shape[1:]))
    section = "\n".join([
        f"## Evaluation speed by batch size, NB201 C={args.C} N={args.N} at {args.resolution} px ({dev.type})",
        "",
        run_line(__file__, argv, dev),
        "",
        f"One-op cells, {args.in_channels}x{args.resolution}x{args.resolution}, {args.images} random images. "
        f"Training: steady state at batch {bs}, the difference of a {short}-step and a {long}-step run. Evaluation: `evaluate`, best of {args.repeats}; microseconds per "
        "image (the fastest batch in bold), and evaluating over training an image at the fastest.",
        "",
        "| cell | train us/img | " + " | ".join(f"eval @{b}" for b in batches) + " | eval/train |",
        "| --- | ---: | " + " | ".join("---:" for _ in batches) + " | ---: |",
        *rows,
        "",
        f"The batch `evaluate` chooses for this network on {dev.type}: {default}. Evaluating an image costs "
        f"{min(ratios):.2f} to {max(ratios):.2f} of training one here; the search reserves the final "
        f"model's test at {EVAL_FRACTION:g} (`EVAL_FRACTION`)"
        + (" (not met: raise it)" if max(ratios) > EVAL_FRACTION else "") + ".",
    ])
    publish(section, args.out)
    return 0


if __name__ == "__main__":
    timed_main(main)
