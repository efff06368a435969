from __future__ import annotations

import pytest
import torch

from monai_hybrid.networks import HybridDiffusionUNet

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_head_channels=8, norm_num_groups=8)


@pytest.mark.parametrize("spatial_dims,size", [(2, (16, 16)), (3, (16, 16, 16))])
@pytest.mark.parametrize(
    "output,channels", [("all", 1 + 4), ("image", 1), ("mask", 4), ("features", 8), ("projection", 6)]
)
def test_output_shapes(spatial_dims, size, output, channels):
    net = HybridDiffusionUNet(spatial_dims, in_channels=1, num_classes=4, projection_dim=6, **TINY)
    x = torch.randn(2, 1, *size)
    out = net(x, timesteps=torch.tensor([0, 7]), output=output)
    assert out.shape == (2, channels, *size)


def test_no_timesteps_means_t0_and_scalar_broadcasts():
    torch.manual_seed(0)
    net = HybridDiffusionUNet(2, 1, 3, **TINY)
    with torch.no_grad():  # residual blocks and the image head start at zero (t would have no effect yet)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        a = net(x)
        b = net(x, timesteps=torch.zeros(3, dtype=torch.long))
        c = net(x, timesteps=0)
        d = net(x, timesteps=500)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    assert not torch.allclose(a, d)


def test_output_mode_mask_makes_a_plain_segmenter():
    net = HybridDiffusionUNet(2, 2, 5, output_mode="mask", **TINY)
    assert net(torch.randn(1, 2, 16, 16)).shape == (1, 5, 16, 16)


def test_image_head_is_zero_at_initialisation_and_heads_are_named():
    net = HybridDiffusionUNet(2, 1, 4, **TINY)
    assert torch.count_nonzero(net(torch.randn(1, 1, 16, 16), output="image")) == 0
    keys = net.state_dict().keys()
    assert {"image_head.conv.weight", "mask_head.conv.weight"} <= set(keys)
    assert not any(k.startswith("projection_head") for k in keys)


def test_projection_is_unit_norm():
    net = HybridDiffusionUNet(2, 1, 4, projection_dim=5, **TINY)
    z = net(torch.randn(2, 1, 16, 16), output="projection")
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2, 16, 16))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(spatial_dims=1), "'spatial_dims' must be 2 or 3"),
        (dict(in_channels=0), "'in_channels' must be a positive integer"),
        (dict(num_classes=1), "'num_classes' must be an integer >= 2"),
        (dict(channels=(8,), attention_levels=(False,)), "'channels' needs at least 2 levels"),
        (dict(channels=(8, 12)), "must be a multiple of 'norm_num_groups'"),
        (dict(attention_levels=(False, True, True)), "'attention_levels' needs one entry per level"),
        (dict(num_head_channels=(8,)), "'num_head_channels' needs one entry per level"),
        (dict(num_head_channels=3), "'num_head_channels' (3) must divide the channels (16)"),
        (dict(projection_dim=-1), "'projection_dim' must be a non-negative integer"),
        (dict(output_mode="logits"), "'output_mode' got"),
        (dict(output_mode="projection"), "output_mode 'projection' needs 'projection_dim' > 0"),
    ],
)
def test_argument_checks(kwargs, message):
    args = dict(spatial_dims=2, in_channels=1, num_classes=4, **TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HybridDiffusionUNet(**args)


@pytest.mark.parametrize(
    "x,kwargs,message",
    [
        (torch.randn(1, 1, 17, 16), {}, "must be divisible by 2"),
        (torch.randn(1, 2, 16, 16), {}, r"expected input of shape \(N, 1, \*, \*\)"),
        (torch.randn(2, 1, 16, 16), {"timesteps": torch.zeros(3)}, "'timesteps' must be a scalar or have shape"),
        (torch.randn(1, 1, 16, 16), {"output": "probs"}, "'output' got"),
        (torch.randn(1, 1, 16, 16), {"output": "projection"}, "needs 'projection_dim' > 0"),
        (torch.randn(1, 1, 16, 16), {"context": torch.zeros(1, 1, 4)}, "'context'"),
    ],
)
def test_forward_checks(x, kwargs, message):
    net = HybridDiffusionUNet(2, 1, 4, **TINY)
    with pytest.raises(ValueError, match=message):
        net(x, **kwargs)
