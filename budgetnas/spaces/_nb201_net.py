"""The NAS-Bench-201 network as PyTorch modules: one cell, and the benchmark's skeleton around it.

Built through :meth:`budgetnas.spaces.NB201Space.build`; apart from the space's strings and costs
(:mod:`budgetnas.spaces.nb201`), which need no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from budgetnas.nn.ops import AvgPool, Identity, ReLUConvBN, ResidualReduction
from budgetnas.spaces.nb201 import EDGES, NB201Arch

_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _op_module(op: str, channels: int) -> nn.Module:
    if op in _CONV_KERNEL:
        return ReLUConvBN(channels, channels, _CONV_KERNEL[op])
    if op == "avg_pool_3x3":
        return AvgPool()
    if op == "skip_connect":
        return Identity()
    raise AssertionError(op)  # "none" edges are never built


class NB201Cell(nn.Module):
    """One cell: node j is the sum of op(node i) over its incoming edges; node 3 is the output."""

    def __init__(self, arch: NB201Arch, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        self.wiring: list[tuple[int, int]] = []  # (to, from) of each module in self.edges
        for (to, frm), op in zip(EDGES, arch):
            if op != "none":
                self.edges.append(_op_module(op, channels))
                self.wiring.append((to, frm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            total: torch.Tensor | None = None
            for m, (t, frm) in zip(self.edges, self.wiring):
                if t == to:
                    out = m(nodes[frm])
                    # plain adds: torch.stack(...).sum() would first copy every term (+25% bytes)
                    total = out if total is None else total + out
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[3]


class NB201Network(nn.Module):
    """NB201's skeleton (AutoDL's ``TinyNetwork``) around one repeated cell."""

    def __init__(self, arch: NB201Arch, *, C: int, N: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        layers: list[nn.Module] = []
        c_prev = C
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResidualReduction(c_prev, c))
            layers.extend(NB201Cell(arch, c) for _ in range(N))
            c_prev = c
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))
