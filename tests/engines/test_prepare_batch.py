from __future__ import annotations

import pytest
import torch
from monai.networks.schedulers import DDPMScheduler

from monai_hybrid.engines import HybridPrepareBatch


def _batch(n=8):
    return {"image": torch.randn(n, 1, 8, 8), "label": torch.randint(0, 3, (n, 1, 8, 8))}


@pytest.mark.parametrize(
    "mode,has_image,has_label,noised",
    [
        ("hybrid", True, True, True),
        ("supervised", False, True, False),
        ("diffusion", True, False, True),
        ("contrastive", False, True, False),
    ],
)
def test_targets_and_noise_per_mode(mode, has_image, has_label, noised):
    torch.manual_seed(0)
    pb = HybridPrepareBatch(DDPMScheduler(num_train_timesteps=20), mode=mode)
    images, targets, args, kwargs = pb(_batch())
    assert args == ()
    assert ("image" in targets) == has_image and ("label" in targets) == has_label
    assert set(kwargs) == {"noise", "timesteps"}
    assert kwargs["noise"].abs().sum().item() > 0 if noised else torch.count_nonzero(kwargs["noise"]) == 0
    assert (kwargs["timesteps"].max() > 0) == noised
    assert kwargs["timesteps"].max() < 20


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon", "v_prediction"])
def test_image_target_per_prediction_type(prediction_type):
    sched = DDPMScheduler(num_train_timesteps=20)
    pb = HybridPrepareBatch(sched, prediction_type=prediction_type)
    images, targets, _, kw = pb(_batch())
    expected = {
        "sample": images,
        "epsilon": kw["noise"],
        "v_prediction": sched.get_velocity(images, kw["noise"], kw["timesteps"]),
    }[prediction_type]
    torch.testing.assert_close(targets["image"], expected)


def test_t0_fraction_one_puts_every_sample_at_t0():
    pb = HybridPrepareBatch(DDPMScheduler(num_train_timesteps=20), t0_fraction=1.0)
    assert torch.count_nonzero(pb(_batch())[3]["timesteps"]) == 0


def test_messages():
    sched = DDPMScheduler(num_train_timesteps=20)
    with pytest.raises(ValueError, match="'mode' got"):
        HybridPrepareBatch(sched, mode="semi")
    with pytest.raises(ValueError, match="'prediction_type' got"):
        HybridPrepareBatch(sched, prediction_type="x0")
    with pytest.raises(ValueError, match="'t0_fraction' must be in"):
        HybridPrepareBatch(sched, t0_fraction=1.5)
    with pytest.raises(ValueError, match="'scheduler' must be a MONAI noise scheduler"):
        HybridPrepareBatch(object())
    with pytest.raises(KeyError, match="mode 'hybrid' needs labels"):
        HybridPrepareBatch(sched)({"image": torch.randn(2, 1, 8, 8)})
    with pytest.raises(KeyError, match="must be a dict with the key 'image'"):
        HybridPrepareBatch(sched)(torch.randn(2, 1, 8, 8))
    # the diffusion mode needs no labels
    HybridPrepareBatch(sched, mode="diffusion")({"image": torch.randn(2, 1, 8, 8)})
