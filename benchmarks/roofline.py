#!/usr/bin/env python
"""Roofline estimate for training NB201 networks: FLOPs and bytes moved per image (arithmetic only).

This script measures nothing on a GPU. It builds the NB201 network (C=16, N=5, 10 classes,
3x32x32) around each cell with ``budgetnas.spaces.NB201Space``, runs one image through it with
forward hooks on every layer, and counts, per layer:

* **FLOPs** = 2 x multiply-adds of the convolutions and the classifier (``Conv2d``, ``Linear``).
  The total is checked to equal ``2 * NB201Space.cost(...).macs``. Elementwise layers (ReLU,
  BatchNorm, pooling, the node sums) are counted as ~0 FLOPs: they move bytes but do a few
  operations per element, which is negligible next to the convolutions.
* **A training step ~= 3 x the forward FLOPs** (backward = input gradient + weight gradient, each
  about one forward).
* **Bytes, unfused** (every layer a separate kernel reading its inputs from and writing its output
  to HBM), activations in bf16 (2 bytes/element):
  - forward: each layer reads its input(s) and writes its output once: conv/linear (input +
    output), ReLU, BatchNorm and pooling (input + output), a k-term node sum (k inputs + 1 output),
    ``skip_connect`` 0 (an alias);
  - backward: 2 x the forward bytes (the input gradient is written, the output gradient and the
    saved activations are re-read; exact for a conv's dgrad + wgrad, ~1.5x for ReLU, ~2.5x for
    two-pass BatchNorm, so 2x is a round average);
  - so activation bytes per training image = 3 x forward bytes.
* **Bytes, fused** ReLU-Conv-BN (the ``nor_conv_*`` ops and the reduction block's two convs): the
  ReLU is applied while the conv loads its input and BN in the conv's epilogue, so one ReLU-Conv-BN
  reads its input once and writes its output once (2 tensors instead of 6); the stem's Conv-BN
  likewise. Node sums, pooling, the last BN-ReLU and the classifier are as above. This is optimistic
  for training: BN's batch statistics need a reduction over the whole batch before normalising, so
  a real kernel must write the conv output once or recompute it.
* **Weights and optimizer state** move once per step, not per image: ``--bytes-per-param`` (50 by
  default, itemised in ``WEIGHT_NOTE``) x parameters, amortised over ``--batch`` images (512 by
  default).

Not counted: the data pipeline (JPEG decode, augmentation, host-to-device copies), the loss (10
logits), kernel-launch overhead, and L2-cache reuse (the H100 has 50 MB of L2; a stage-1 tensor at
batch 512 is 16.8 MB, so some producer-consumer pairs may hit L2 and move less than counted).

Peaks are NVIDIA's **datasheet** numbers for the H100 SXM (dense bf16 tensor-core ~989 TFLOP/s,
HBM3 ~3.35 TB/s), leads to be replaced by peaks measured on the GPU machine (``--peak-tflops``,
``--peak-tbps``). Time floors per training image: compute = FLOPs / peak FLOP/s, memory = bytes /
peak bytes/s; the implied images/s ceilings are their inverses.

Examples::

    python benchmarks/roofline.py                # print the table
    python benchmarks/roofline.py --append       # ... and append it to benchmarks/RESULTS.md
    python benchmarks/roofline.py --cell '|nor_conv_3x3~0|+|...|'   # extra cells
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sys as _sys  # noqa: E402

_sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import append_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from budgetnas.nn.ops import AvgPool, Identity, ReLUConvBN, ResidualReduction  # noqa: E402
from budgetnas.spaces import NB201Space  # noqa: E402
from budgetnas.spaces.nb201 import NB201Cell, NB201Network  # noqa: E402

ACT_BYTES = 2  # bf16 activations
BACKWARD_FACTOR = 2.0  # backward bytes = 2 x forward bytes
TRAIN_FLOP_FACTOR = 3.0  # training step = forward + backward (dgrad + wgrad) ~= 3 x forward
H100_SXM_BF16_TFLOPS = 989.0  # datasheet, dense (1979 is with 2:4 sparsity)
H100_SXM_HBM3_TBPS = 3.35  # datasheet
DEFAULT_BYTES_PER_PARAM = 50
WEIGHT_NOTE = (
    "per parameter and step, SGD with momentum, fp32 master weights, bf16 autocast: autocast reads "
    "the fp32 weight and writes a bf16 copy (4 + 2), forward and dgrad read the copy (2 + 2), wgrad "
    "writes a bf16 gradient that is cast to the fp32 .grad (2 + 2 + 4), gradient clipping reads the "
    "gradients for the norm and rescales them (4 + 4 + 4), SGD reads weight, gradient and momentum "
    "and writes weight and momentum (20): 50; the exact split hardly matters, it is well under 1% "
    "of the activation traffic at batch 512"
)

# (name, NB201 index in the NATS-Bench table, cell, why this one)
CELLS: tuple[tuple[str, int | None, str, str], ...] = (
    ("best", 6111,
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "NB201's best CIFAR-10 cell (the issue's): 4 conv3x3 + 1 conv1x1, 2 node sums"),
    ("wide", 2083,
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|skip_connect~1|skip_connect~2|",
     "three parallel conv3x3 all reading node 0, merged by skips into one 3-term sum (depth 1)"),
    ("deep", 818,
     "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|",
     "a chain 0->1->2->3 of three conv3x3, no sums (depth 3, width 1)"),
    ("tiny", 4768,
     "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
     "mostly skip/pool: x + avgpool(conv1x1(x)), one 1x1 conv per cell"),
)


@dataclass
class Tally:
    """Per-image counts for one network (forward pass, one image)."""

    macs: int = 0
    conv_elems: int = 0  # elements read + written by conv / linear layers (unfused)
    elementwise_elems: int = 0  # ReLU, BN, pooling, node sums (unfused)
    fused_elems: int = 0  # everything, with ReLU-Conv-BN (and the stem's Conv-BN) fused
    stack_extra_elems: int = 0  # extra forward traffic of pairwise node-sum adds over an ideal add
    by_kind: dict[str, int] = field(default_factory=dict)  # unfused elements per layer kind

    def add(self, kind: str, elems: int, *, fused: int | None = None) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + elems
        if kind in ("conv", "linear"):
            self.conv_elems += elems
        else:
            self.elementwise_elems += elems
        self.fused_elems += elems if fused is None else fused

    @property
    def forward_elems(self) -> int:
        return self.conv_elems + self.elementwise_elems


def count(net: nn.Module, *, in_channels: int = 3, resolution: int = 32) -> Tally:
    """Walk ``net`` with forward hooks on one image and tally MACs and activation elements."""
    t = Tally()
    fused_parents: set[int] = set()  # ids of ReLU/Conv/BN modules inside a fused group
    for m in net.modules():
        if isinstance(m, ReLUConvBN):
            fused_parents.update(id(c) for c in m)
    if isinstance(net, NB201Network):  # the stem: Conv-BN fused like ReLU-Conv-BN
        fused_parents.update(id(c) for c in net.stem)

    def conv_hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        x = inp[0]
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            t.macs += out.numel() * (m.in_channels // m.groups) * kh * kw
            kind = "conv"
        else:  # nn.Linear
            t.macs += out.numel() * m.in_features
            kind = "linear"
        elems = x.numel() + out.numel()
        # fused group: the group reads its input once (charged here) and writes its output once
        # (charged to the BN that ends it); a stand-alone conv reads and writes
        fused = x.numel() if id(m) in fused_parents else None
        t.add(kind, elems, fused=fused)

    def unary_hook(kind: str):
        def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            elems = inp[0].numel() + out.numel()
            fused = None
            if id(m) in fused_parents:
                # ReLU: done in the conv's prologue (0); BN: the group's single output write
                fused = 0 if isinstance(m, nn.ReLU) else out.numel()
            t.add(kind, elems, fused=fused)
        return hook

    def cell_hook(m: NB201Cell, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        # node j = sum of its incoming terms: a k-term sum reads k tensors and writes one
        # (counted as an ideal k-input add; a node with no terms is a zeros_like: one write)
        n = inp[0].numel()
        for to in (1, 2, 3):
            k = sum(1 for (t_, _f) in m.wiring if t_ == to)
            if k > 1:
                t.add("add", (k + 1) * n)
                t.stack_extra_elems += (2 * k - 4) * n  # k-1 pairwise adds move 3(k-1), not k+1
            elif k == 0:
                t.add("add", n)

    def reduction_hook(m: ResidualReduction, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        t.add("add", 3 * out.numel())  # shortcut + conv_b: read 2, write 1

    handles = []
    known_containers = (nn.Sequential, nn.ModuleList, NB201Network, AvgPool)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            handles.append(m.register_forward_hook(unary_hook("batchnorm")))
        elif isinstance(m, nn.ReLU):
            handles.append(m.register_forward_hook(unary_hook("relu")))
        elif isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            handles.append(m.register_forward_hook(unary_hook("pool")))
        elif isinstance(m, NB201Cell):
            handles.append(m.register_forward_hook(cell_hook))
        elif isinstance(m, ResidualReduction):
            handles.append(m.register_forward_hook(reduction_hook))
        elif isinstance(m, Identity) or isinstance(m, known_containers):
            pass  # skip_connect is an alias; containers do no work of their own
        else:
            raise TypeError(f"roofline.count does not know how to count {type(m).__name__}")
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, in_channels, resolution, resolution))
    finally:
        for h in handles:
            h.remove()
    return t


@dataclass
class Row:
    name: str
    index: int | None
    cell: str
    why: str
    params: int
    macs: int  # per image, forward
    cost_macs: int  # NB201Space.cost(...).macs
    fwd_bytes: float  # activations, unfused, forward, per image
    fwd_bytes_fused: float
    conv_bytes: float  # forward, unfused, of which conv/linear
    elementwise_bytes: float  # forward, unfused, of which ReLU/BN/pool/sums
    weight_bytes: float  # per image, amortised over the batch
    batch: int
    stack_extra_bytes: float = 0.0  # forward, what pairwise adds in the node sums add

    @property
    def fwd_flops(self) -> float:
        return 2.0 * self.macs

    @property
    def train_flops(self) -> float:
        return TRAIN_FLOP_FACTOR * self.fwd_flops

    @property
    def train_bytes(self) -> float:
        return (1 + BACKWARD_FACTOR) * self.fwd_bytes + self.weight_bytes

    @property
    def train_bytes_fused(self) -> float:
        return (1 + BACKWARD_FACTOR) * self.fwd_bytes_fused + self.weight_bytes


def analyse(cell: str, *, name: str = "", index: int | None = None, why: str = "", C: int = 16,
            N: int = 5, num_classes: int = 10, in_channels: int = 3, resolution: int = 32,
            batch: int = 512, bytes_per_param: float = DEFAULT_BYTES_PER_PARAM) -> Row:
    space = NB201Space(C=C, N=N)
    arch = space.parse(cell)
    net = space.build(arch, in_channels=in_channels, num_classes=num_classes)
    cost = space.cost(arch, in_channels=in_channels, num_classes=num_classes, resolution=resolution)
    t = count(net, in_channels=in_channels, resolution=resolution)
    params = sum(p.numel() for p in net.parameters())
    return Row(
        name=name or cell, index=index, cell=space.format(arch), why=why, params=params,
        macs=t.macs, cost_macs=cost.macs,
        fwd_bytes=ACT_BYTES * t.forward_elems, fwd_bytes_fused=ACT_BYTES * t.fused_elems,
        conv_bytes=ACT_BYTES * t.conv_elems, elementwise_bytes=ACT_BYTES * t.elementwise_elems,
        weight_bytes=bytes_per_param * params / batch, batch=batch,
        stack_extra_bytes=ACT_BYTES * t.stack_extra_elems,
    )


def fmt_rate(x: float) -> str:
    return f"{x / 1e3:,.0f}k" if x < 1e6 else f"{x / 1e6:,.2f}M"


def render(rows: list[Row], *, peak_tflops: float, peak_tbps: float, bytes_per_param: float) -> str:
    flops_s, bytes_s = peak_tflops * 1e12, peak_tbps * 1e12
    ridge = flops_s / bytes_s
    out = []
    out.append("Cells (NB201 C=16, N=5, 10 classes, 3x32x32; index = row of the NATS-Bench table):")
    out.append("")
    for r in rows:
        idx = f"#{r.index}" if r.index is not None else "-"
        out.append(f"- {r.name} ({idx}): `{r.cell}`" + (f" — {r.why}" if r.why else ""))
    out.append("")
    out.append("Per image. MACs and FLOPs forward; 'train' = forward + backward (3x forward FLOPs; "
               "activation bytes 3x forward) + weights/optimizer amortised over the batch. "
               "MB = 1e6 bytes, bf16 activations.")
    out.append("")
    out.append("| cell | params | MACs (fwd) | GFLOP / train img | fwd MB: conv + elementwise = total "
               "| train MB unfused | train MB fused | FLOP/byte unfused | FLOP/byte fused |")
    out.append("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        out.append(
            f"| {r.name} | {r.params:,} | {r.macs / 1e6:,.1f}M | {r.train_flops / 1e9:.3f} "
            f"| {r.conv_bytes / 1e6:.2f} + {r.elementwise_bytes / 1e6:.2f} = {r.fwd_bytes / 1e6:.2f} "
            f"| {r.train_bytes / 1e6:.1f} | {r.train_bytes_fused / 1e6:.1f} "
            f"| {r.train_flops / r.train_bytes:.1f} | {r.train_flops / r.train_bytes_fused:.1f} |"
        )
    out.append("")
    out.append(f"Time floors per training image and implied ceilings on an H100 SXM with DATASHEET peaks "
               f"({peak_tflops:g} TFLOP/s dense bf16, {peak_tbps:g} TB/s HBM3; ridge point "
               f"{ridge:.0f} FLOP/byte). Leads only: replace with peaks measured on the GPU machine.")
    out.append("")
    out.append("| cell | compute floor µs | memory floor µs unfused | memory floor µs fused "
               "| ceiling img/s compute | ceiling img/s memory unfused | ceiling img/s memory fused "
               "| bound by | 100k img/s needs (unfused / fused) |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        tc = r.train_flops / flops_s
        tm = r.train_bytes / bytes_s
        tmf = r.train_bytes_fused / bytes_s
        bound = "memory" if tm > tc else "compute"
        need_u = 1e5 * r.train_bytes / bytes_s
        need_f = 1e5 * r.train_bytes_fused / bytes_s
        out.append(
            f"| {r.name} | {tc * 1e6:.2f} | {tm * 1e6:.2f} | {tmf * 1e6:.2f} "
            f"| {fmt_rate(1 / tc)} | {fmt_rate(1 / tm)} | {fmt_rate(1 / tmf)} | {bound} "
            f"| {need_u:.0%} / {need_f:.0%} of peak HBM BW |"
        )
    out.append("")
    w = rows[0]
    out.append(
        f"Weights and optimizer state: {bytes_per_param:g} bytes/parameter/step ({WEIGHT_NOTE}), "
        f"amortised over a batch of {w.batch}: {w.weight_bytes / 1e3:.0f} kB per image for the "
        f"{w.name} cell ({w.weight_bytes / w.train_bytes:.2%} of its unfused training bytes)."
    )
    if w.stack_extra_bytes:
        eager = w.train_bytes + (1 + BACKWARD_FACTOR) * w.stack_extra_bytes
        out.append("")
        out.append(
            f"As implemented, a node sum is a chain of k-1 pairwise adds (2k-4 more tensors moved "
            f"than an ideal k-input add; an earlier torch.stack version copied all k terms first, "
            f"+25% bytes for the best cell): for the {w.name} cell that is "
            f"+{w.stack_extra_bytes / 1e6:.2f} MB forward (+{w.stack_extra_bytes / w.fwd_bytes:.0%}), "
            f"~{eager / 1e6:.1f} MB per training image at the same 3x rule, a memory ceiling of "
            f"{fmt_rate(peak_tbps * 1e12 / eager)} img/s at the peak above."
        )
    if w.name == "best":
        need_u, need_f = 1e5 * w.train_bytes / bytes_s, 1e5 * w.train_bytes_fused / bytes_s
        out.append("")
        out.append(
            f"What it means for the issue's target (>= 100k img/s for the best cell): training it is "
            f"memory-bound by a factor of {(w.train_bytes / bytes_s) / (w.train_flops / flops_s):.0f} "
            f"(intensity {w.train_flops / w.train_bytes:.0f} FLOP/byte against a ridge of {ridge:.0f}). "
            f"Unfused, 100k img/s needs {need_u:.0%} of the peak HBM bandwidth even with ideal adds "
            f"(more as implemented), which no real kernel mix sustains: not reachable that way. With "
            f"ReLU-Conv-BN fused it needs {need_f:.0%}, plausible but only with fused kernels that also "
            f"avoid the stack copies. Running K candidates concurrently does not move this ceiling (they "
            f"share the same HBM, per-image bytes are unchanged); it only hides launch overhead. The "
            f"issue's figures agree: {w.train_flops / 1e9:.2f} GFLOP per training image (issue: ~0.9), "
            f"a compute ceiling of {fmt_rate(flops_s / w.train_flops)} img/s (issue: ~0.9M, a rounder "
            f"division), and an unfused memory ceiling of {fmt_rate(bytes_s / w.train_bytes)} img/s "
            f"(issue: ~100k)."
        )
    return "\n".join(out)



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--append", action="store_true", help="append the section to --out")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--cell", action="append", default=[], help="an extra NB201 cell string (repeatable)")
    p.add_argument("--batch", type=int, default=512, help="batch the weight traffic is amortised over")
    p.add_argument("--bytes-per-param", type=float, default=DEFAULT_BYTES_PER_PARAM)
    p.add_argument("--peak-tflops", type=float, default=H100_SXM_BF16_TFLOPS,
                   help="bf16 dense peak, TFLOP/s (default: H100 SXM datasheet)")
    p.add_argument("--peak-tbps", type=float, default=H100_SXM_HBM3_TBPS,
                   help="HBM peak, TB/s (default: H100 SXM datasheet)")
    p.add_argument("-C", type=int, default=16)
    p.add_argument("-N", type=int, default=5)
    return p.parse_args(argv)


def rows_for(args: argparse.Namespace) -> list[Row]:
    cells = [(n, i, c, w) for n, i, c, w in CELLS] + [(c, None, c, "") for c in args.cell]
    return [analyse(c, name=n, index=i, why=w, C=args.C, N=args.N, batch=args.batch,
                    bytes_per_param=args.bytes_per_param) for n, i, c, w in cells]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = rows_for(args)
    for r in rows:  # the hooks must agree with the closed-form cost
        if r.macs != r.cost_macs:
            raise SystemExit(f"MAC count mismatch for {r.name}: hooks {r.macs} vs cost() {r.cost_macs}")
    peaks_are_datasheet = (args.peak_tflops, args.peak_tbps) == (H100_SXM_BF16_TFLOPS, H100_SXM_HBM3_TBPS)
    table = render(rows, peak_tflops=args.peak_tflops, peak_tbps=args.peak_tbps,
                   bytes_per_param=args.bytes_per_param)
    print(table)
    if args.append:
        argv_s = sys.argv[1:] if argv is None else argv
        cmd = "python benchmarks/roofline.py" + ("" if not argv_s else " " + shlex.join(argv_s))
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section = "\n".join([
            "## Roofline estimate (arithmetic, not a measurement)",
            "",
            "- NOT a measurement: counted from the network's layer shapes (forward hooks on one image); "
            "the exception to this file's measured-only rule, kept as the yardstick for the GPU "
            "throughput numbers of issue 5",
            f"- date: {date}",
            f"- torch {torch.__version__}, Python {sys.version.split()[0]} (used only to build the "
            "network and walk its layers, on the CPU)",
            f"- command: `{cmd}`",
            "- peaks: " + ("H100 SXM datasheet (dense bf16 989 TFLOP/s, HBM3 3.35 TB/s), not measured; "
                           "to be replaced by the peaks measured on the GPU machine"
                           if peaks_are_datasheet else
                           f"{args.peak_tflops:g} TFLOP/s, {args.peak_tbps:g} TB/s as given on the command line"),
            "- FLOPs = 2 x MACs of convs and the classifier (checked equal to `2 * NB201Space.cost().macs`); "
            "training = 3 x forward FLOPs; elementwise layers ~0 FLOPs",
            "- bytes: bf16 activations; forward = every layer reads its inputs and writes its output "
            "(a k-term node sum reads k, writes 1; skip_connect is free); backward = 2 x forward; "
            "fused = ReLU-Conv-BN (and the stem's Conv-BN) read their input once and write their "
            "output once (optimistic: training BN needs batch statistics before normalising)",
            "- not in the table: data pipeline, loss, launch overhead, L2 reuse, BN's second pass over "
            "its input, gradient fan-in sums in backward beyond the 2x rule, and the extra traffic of "
            "pairwise adds in 3-term node sums (estimated in a note below the tables)",
            "",
            table,
        ])
        append_results(Path(args.out), section)
        print(f"\nappended to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
