"""What HybridDiffusionUNet assumes of MONAI's DiffusionModelUNet, checked directly: an upgrade that changes it
fails here, by name (docs/design-notes.md, "Private members of ignite and MONAI")."""

from __future__ import annotations

import torch
from monai.networks.nets import DiffusionModelUNet
from torch import nn


def test_diffusion_unet_ends_in_norm_activation_convolution_with_a_zero_convolution():
    unet = DiffusionModelUNet(
        2, 1, 1, num_res_blocks=1, channels=(8, 16), attention_levels=(False, False), norm_num_groups=8
    )
    out = unet.out
    assert isinstance(out, nn.Sequential) and len(out) == 3
    assert isinstance(out[0], nn.GroupNorm) and isinstance(out[1], nn.SiLU)
    assert all(torch.count_nonzero(p) == 0 for p in out[2].parameters())  # as the hybrid image head starts
