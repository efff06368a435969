"""Inference pads a scan smaller than its window the way training does: with the scaled background (-1)."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser

from tests.bundle.conftest import BUNDLE, TINY_SETTINGS


def logits_small_and_centred(spatial_dims: int, **overrides) -> tuple[torch.Tensor, torch.Tensor]:
    """The inferer's logits on a scan smaller than its window, and on the same scan centred in background."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.yaml"))
    roi = [32] * spatial_dims  # the tiny window is 32 (x 32)
    divisible = [16, 16, 1] if spatial_dims == 2 else 16
    settings = {**TINY_SETTINGS, "spatial_dims": spatial_dims, "roi_size": roi, "divisible_k": divisible}
    parser.update({"model_settings": settings, **overrides})
    background = next(
        t
        for t in parser.get_parsed_content("preprocessing").transforms
        if type(t).__name__ == "ScaleIntensityRangePercentilesd"
    ).scaler.b_min
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def", instantiate=True).eval()
    inferer = parser.get_parsed_content("mask_inferer")  # float32: the padding is what is compared
    small = (24, 20, 4) if spatial_dims == 2 else (24, 20, 16)
    full = (32, 32, 4) if spatial_dims == 2 else (32, 32, 32)
    image = torch.rand(1, 1, *small) * 2 - 1
    region = tuple(slice((f - s) // 2, (f - s) // 2 + s) for f, s in zip(full, small, strict=False))
    centred = torch.full((1, 1, *full), background)
    centred[(..., *region)] = image
    with torch.no_grad():
        return inferer(image, network), inferer(centred, network)[(..., *region)]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_inferer_pads_with_the_scaled_background(spatial_dims):
    small, centred = logits_small_and_centred(spatial_dims)
    assert torch.allclose(small, centred, atol=1e-5)


def test_padding_with_zero_would_change_the_logits():
    small, centred = logits_small_and_centred(2, **{"mask_inferer#background": 0.0})
    assert not torch.allclose(small, centred, atol=1e-3)
