"""The hand-designed ResNet baseline: parameter count, shapes, depth validation."""

from __future__ import annotations

import pytest
import torch

from budgetnas.errors import ConfigError
from budgetnas.nn.resnet import resnet


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k  # no bias


def _bn(c: int) -> int:
    return 2 * c  # affine weight and bias


def _expected_params(depth: int, in_channels: int, num_classes: int, width: int) -> int:
    """He et al.'s CIFAR ResNet with projection (1x1 conv + BN) shortcuts, counted by hand."""
    n = (depth - 2) // 6
    total = _conv(in_channels, width, 3) + _bn(width)  # stem
    c_prev = width
    for stage, c in enumerate((width, 2 * width, 4 * width)):
        for i in range(n):
            total += _conv(c_prev, c, 3) + _bn(c) + _conv(c, c, 3) + _bn(c)
            if stage > 0 and i == 0:  # stride-2 stage start: projection shortcut
                total += _conv(c_prev, c, 1) + _bn(c)
            c_prev = c
    return total + c_prev * num_classes + num_classes  # linear classifier


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet20_has_the_well_known_0_27m_parameters():
    expected = _expected_params(20, 3, 10, 16)
    assert expected == 272_474
    assert _count(resnet(20, in_channels=3, num_classes=10)) == expected
    assert round(expected / 1e6, 2) == 0.27


@pytest.mark.parametrize("depth,in_channels,num_classes,width", [(8, 1, 10, 16), (32, 3, 100, 16), (14, 16, 7, 8)])
def test_parameter_count_matches_the_formula(depth, in_channels, num_classes, width):
    model = resnet(depth, in_channels=in_channels, num_classes=num_classes, width=width)
    assert _count(model) == _expected_params(depth, in_channels, num_classes, width)


@pytest.mark.parametrize("channels", [1, 3, 16])
@pytest.mark.parametrize("size", [28, 32])
def test_forward_shapes(channels, size):
    model = resnet(8, in_channels=channels, num_classes=10, width=8).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_resnet20_trains_one_step_and_downsamples_twice():
    model = resnet(20, in_channels=1, num_classes=10)
    x = torch.randn(4, 1, 28, 28)
    feats = model.layers(model.stem(x))
    assert feats.shape == (4, 64, 7, 7)  # 28 -> 14 -> 7, channels 16 -> 32 -> 64
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("depth", [0, 7, 18, 21, -4, 20.0, True, "20"])
def test_bad_depth_is_a_config_error_that_explains_6n_plus_2(depth):
    with pytest.raises(ConfigError, match=r"6n\+2"):
        resnet(depth)


@pytest.mark.parametrize("kw", [{"in_channels": 0}, {"num_classes": -1}, {"width": 0}])
def test_bad_sizes_are_config_errors(kw):
    with pytest.raises(ConfigError):
        resnet(20, **kw)


@pytest.mark.parametrize("c_in,c_out,stride", [(4, 4, 1), (4, 8, 2)])  # identity and projection shortcuts
def test_a_block_applies_relu_after_the_residual_sum(c_in, c_out, stride):
    """He et al.'s basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the ReLU
    after the sum, so a block's output is never negative. (Without the last ReLU the parameter
    count and the shapes are the same.)"""
    from budgetnas.nn.resnet import BasicBlock

    torch.manual_seed(0)
    block = BasicBlock(c_in, c_out, stride).eval()
    x = torch.randn(2, c_in, 8, 8)
    with torch.no_grad():
        inner = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        summed = inner + block.shortcut(x)
        out = block(x.clone())
    assert (summed < 0).any()  # (the ReLU has something to do here)
    torch.testing.assert_close(out, torch.relu(summed))
    assert (out >= 0).all()


def test_every_block_of_the_network_ends_in_a_relu():
    """In the whole network too, each block's output (the next block's input) is non-negative."""
    torch.manual_seed(0)
    model = resnet(8, in_channels=3, num_classes=10, width=4).eval()
    outs = []
    for layer in model.layers:
        layer.register_forward_hook(lambda m, i, o: outs.append(o))
    with torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
    assert len(outs) == 3 and all((o >= 0).all() for o in outs)
