"""FLOPs of a training step: counted, proportional to the batch, and the network's gradients left alone."""

from __future__ import annotations

import pytest
import torch

from monai_hybrid.benchmark.compute import step_flops
from monai_hybrid.networks import HybridDiffusionUNet


def _net() -> HybridDiffusionUNet:
    return HybridDiffusionUNet(2, 1, 4, channels=(8, 16), attention_levels=(False, True), num_head_channels=8,
                               norm_num_groups=8)  # fmt: skip


def test_flops_grow_with_the_batch_and_leave_the_gradients():
    net = _net()
    one, two = step_flops(net, (1, 1, 16, 16)), step_flops(net, (2, 1, 16, 16))
    assert one > 0 and two == 2 * one
    assert all(p.grad is None for p in net.parameters())
    net.eval()
    step_flops(net, (1, 1, 16, 16))
    assert not net.training


def test_a_batch_shape_without_channels_is_refused():
    with pytest.raises(ValueError, match="'input_shape' must be"):
        step_flops(_net(), (16, 16))


def test_the_count_includes_the_backward_pass():
    net = _net()
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.randn(1, 1, 16, 16), torch.tensor([5]))
    forward = counter.get_total_flops()
    assert step_flops(net, (1, 1, 16, 16)) > 2.5 * forward  # backward is about twice the forward
