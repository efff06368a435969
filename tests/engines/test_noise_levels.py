"""Noise-level sampling and the per-sample mask-loss weights, with values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from monai.networks.schedulers import DDPMScheduler

from monai_hybrid.engines import HybridPrepareBatch, TimestepSampler, mask_weights
from monai_hybrid.losses import HybridLoss


def _scheduler(t: int = 1000) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=t, schedule="linear_beta")


def test_truncated_timesteps_stay_below_t_max_and_t0_fraction_puts_zeros():
    torch.manual_seed(0)
    t = TimestepSampler(_scheduler(), "truncated", t_max=250)(4000)
    assert t.dtype == torch.long and t.shape == (4000,) and int(t.max()) < 250 and int(t.min()) >= 0
    zeros = TimestepSampler(_scheduler(), "truncated", t_max=250, t0_fraction=1.0)(16)
    assert torch.equal(zeros, torch.zeros(16, dtype=torch.long))


def test_lognormal_maps_each_sigma_to_the_timestep_with_that_sigma():
    sampler = TimestepSampler(_scheduler(), "lognormal")
    alpha_bar = _scheduler().alphas_cumprod.double()
    for t in (3, 100, 500, 900):
        sigma = torch.sqrt((1 - alpha_bar[t]) / alpha_bar[t])  # EDM's sigma of the same input
        assert int(sampler.nearest_timestep(sigma[None])[0]) == t
    torch.manual_seed(0)
    t = sampler(2000)
    assert 0 <= int(t.min()) and int(t.max()) < 1000


def test_alpha_bar_weights_by_hand():
    # linear beta from 1e-4 to 0.02 over T = 20 steps: beta_t = 1e-4 + t (0.02 - 1e-4) / 19
    betas = [1e-4 + t * (0.02 - 1e-4) / 19 for t in range(20)]
    expected = math.prod(1 - b for b in betas[:3])  # alpha_bar_2
    w = mask_weights(_scheduler(20), torch.tensor([2, 0]), "alpha_bar")
    assert w[0].item() == pytest.approx(expected, rel=1e-5) and w[1].item() == pytest.approx(1 - 1e-4, rel=1e-6)
    assert torch.equal(mask_weights(_scheduler(20), torch.tensor([2, 7]), "none"), torch.ones(2))


def test_weighted_mask_loss_is_the_weighted_mean_of_per_sample_losses():
    torch.manual_seed(0)
    loss = HybridLoss(1, image_weight=0.0, mask_weight=1.0)
    pred = torch.randn(2, 1 + 3, 8, 8)
    label = torch.randint(0, 3, (2, 1, 8, 8))
    first = loss.terms(pred[:1], {"label": label[:1]})["loss_mask"]
    second = loss.terms(pred[1:], {"label": label[1:]})["loss_mask"]
    only_first = loss.terms(pred, {"label": label, "mask_weights": torch.tensor([1.0, 0.0])})["loss_mask"]
    assert only_first.item() == pytest.approx(first.item(), rel=1e-5)
    mixed = loss.terms(pred, {"label": label, "mask_weights": torch.tensor([0.25, 0.75])})["loss_mask"]
    assert mixed.item() == pytest.approx(0.25 * first.item() + 0.75 * second.item(), rel=1e-5)


def test_unlabelled_batches_follow_the_labelled_one_with_their_weight():
    unlabeled = [{"image": torch.randn(3, 1, 8, 8)}]
    pb = HybridPrepareBatch(
        _scheduler(20),
        mode="hybrid",
        t_max=5,
        timestep_distribution="truncated",
        mask_weighting="alpha_bar",
        unlabeled_loader=unlabeled,
        unlabeled_weight=0.5,
    )
    images, targets, _, kwargs = pb({"image": torch.randn(2, 1, 8, 8), "label": torch.zeros(2, 1, 8, 8)})
    assert images.shape == (5, 1, 8, 8) and kwargs["timesteps"].shape == (5,) and int(kwargs["timesteps"].max()) < 5
    assert targets["label"].shape[0] == 2 and targets["mask_weights"].shape == (2,)
    assert targets["image"].shape[0] == 5 and targets["image_weights"].tolist() == [1.0, 1.0, 0.5, 0.5, 0.5]
    # fine-tuning (supervised): the labelled part is clean at t = 0, only the unlabelled part is denoised
    pb = HybridPrepareBatch(_scheduler(20), mode="supervised", unlabeled_loader=unlabeled)
    images, targets, _, kwargs = pb({"image": torch.randn(2, 1, 8, 8), "label": torch.zeros(2, 1, 8, 8)})
    assert kwargs["timesteps"][:2].tolist() == [0, 0] and targets["image"].shape[0] == 3
    assert "image_weights" not in targets


def test_bad_noise_settings_are_named():
    with pytest.raises(ValueError, match="'distribution' got"):
        TimestepSampler(_scheduler(), "cosine")
    with pytest.raises(ValueError, match="'t_max' must be in"):
        TimestepSampler(_scheduler(20), "truncated", t_max=250)
    with pytest.raises(ValueError, match="'mask_weighting' got"):
        HybridPrepareBatch(_scheduler(), mask_weighting="snr")
    with pytest.raises(ValueError, match="mode 'contrastive' cannot use unlabelled scans"):
        HybridPrepareBatch(_scheduler(), mode="contrastive", unlabeled_loader=[])
