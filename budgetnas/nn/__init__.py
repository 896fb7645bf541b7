"""Reusable torch building blocks shared by search spaces (layer 1), and hand-designed baselines."""

from budgetnas.nn.ops import AvgPool, Identity, ReLUConvBN, ResidualReduction, Zero
from budgetnas.nn.resnet import resnet

__all__ = ["AvgPool", "Identity", "ReLUConvBN", "ResidualReduction", "Zero", "resnet"]
