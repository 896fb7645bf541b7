"""Building blocks of the NAS-Bench-201 network, written to match the benchmark's layers.

The layer shapes (and so the parameter counts) follow AutoDL-Projects' ``TinyNetwork``: every
convolution is ``ReLU -> Conv (no bias) -> BatchNorm (affine)``, pooling keeps the channel count,
and reductions are ResNet basic blocks with an average-pool + 1x1-conv shortcut.
"""

from __future__ import annotations

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU, then a bias-free convolution, then affine BatchNorm (NB201's ``nor_conv_*``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class AvgPool(nn.Module):
    """3x3 average pool, stride 1, padding not counted (NB201's ``avg_pool_3x3``)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


class Identity(nn.Module):
    """``skip_connect``: the input unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """``none``: contributes nothing. Cells drop these edges when built, so this is rarely run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ResidualReduction(nn.Module):
    """NB201's reduction block: a stride-2 ResNet basic block between stages.

    ``conv_a`` (3x3, stride 2) and ``conv_b`` (3x3) are ReLU-Conv-BN; the shortcut is a 2x2 average
    pool followed by a 1x1 convolution, so it halves the resolution and changes the channels.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))
