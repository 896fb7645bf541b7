"""A hand-designed ResNet for small images: the "manual design" that NAS is compared against.

He et al.'s CIFAR ResNet ("Deep Residual Learning for Image Recognition", CVPR 2016, section 4.2):
a 3x3 convolution stem, three stages of ``n = (depth - 2) / 6`` basic blocks with ``width``,
``2 * width`` and ``4 * width`` channels, stride 2 at the start of stages 2 and 3, then global
average pooling and a linear classifier. ``depth`` counts the stem, the ``6n`` block convolutions
and the classifier, so valid depths are 8, 14, 20, 32, 44, 56, 110, ...

Where the resolution or the channels change, the shortcut is a 1x1 convolution + BatchNorm
projection (the paper's option B); elsewhere it is the identity. With that, ``resnet(20)`` has
272,474 parameters (the paper's option A, zero-padded shortcuts, has 0.27M too).

Example::

    >>> model = resnet(20, in_channels=1, num_classes=10)
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn

from budgetnas.errors import ConfigError


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection; ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """He et al.'s CIFAR ResNet; build it with :func:`resnet`."""

    def __init__(self, blocks_per_stage: int, *, in_channels: int, num_classes: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        c_prev = width
        for stage, c in enumerate((width, 2 * width, 4 * width)):
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(c_prev, c, stride))
                c_prev = c
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.classifier(torch.flatten(self.pool(x), 1))


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"resnet {name} must be a positive integer, got {value!r}")
    return value


def resnet(depth: int = 20, in_channels: int = 3, num_classes: int = 10, width: int = 16) -> nn.Module:
    """He et al.'s CIFAR ResNet of ``depth`` layers (6n+2: 20, 32, 44, 56, 110, ...).

    The hand-designed baseline that searched architectures are compared against: ``resnet(20)``
    is the paper's ResNet-20 (272,474 parameters for 3 input channels and 10 classes).
    Works for any input of at least 4x4 pixels (e.g. 28x28 Fashion-MNIST or 32x32 CIFAR).

    Example::

        model = resnet(20, in_channels=1, num_classes=10)   # Fashion-MNIST
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ConfigError(
            f"resnet depth must be 6n+2 for a whole number n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), "
            f"got {depth!r}: three stages of n two-layer blocks, plus the stem and the classifier"
        )
    in_channels = _positive_int("in_channels", in_channels)
    num_classes = _positive_int("num_classes", num_classes)
    width = _positive_int("width", width)
    return ResNet((depth - 2) // 6, in_channels=in_channels, num_classes=num_classes, width=width)
