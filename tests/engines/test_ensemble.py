"""The hybrid model's own ensemble at inference: mask logits averaged over noise levels and noise draws."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import SliceInferer
from monai.networks.schedulers import DDPMScheduler

from monai_hybrid.engines import MaskInferer, window_inferer
from monai_hybrid.networks import HybridDiffusionUNet


def _net() -> HybridDiffusionUNet:
    torch.manual_seed(0)
    net = HybridDiffusionUNet(
        2, 1, 4, channels=(8, 16), attention_levels=(False, False), norm_num_groups=8, num_head_channels=8
    )
    return net.eval()


def test_one_level_at_t0_equals_one_pass():
    net, x = _net(), torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        single = net(x, output="mask")
        assert torch.equal(MaskInferer(timesteps=[0])(x, net), single)
        assert torch.equal(MaskInferer()(x, net), single)


def test_the_average_over_levels_and_draws_by_hand():
    """A stub network returns its timestep as every logit (0 for the clean pass): levels 0, 50, 100 with 2 draws
    are 5 passes, 0 + 50 + 50 + 100 + 100 = 300, mean 60."""
    seen = []

    def stub(x, timesteps=None, output=None):
        t = 0 if timesteps is None else int(timesteps[0])
        seen.append((t, output))
        return torch.full((x.shape[0], 4, *x.shape[2:]), float(t))

    inferer = MaskInferer(timesteps=[0, 50, 100], draws=2, scheduler=DDPMScheduler(1000))
    out = inferer(torch.zeros(1, 1, 8, 8), stub)
    assert inferer.passes == 5 and torch.allclose(out, torch.full_like(out, 60.0))
    assert sorted(seen) == [(0, "mask"), (50, "mask"), (50, "mask"), (100, "mask"), (100, "mask")]


def test_noise_is_drawn_per_window_and_reproducible():
    net, x = _net(), torch.randn(1, 1, 16, 16, 3)
    tiles = SliceInferer(spatial_dim=2, roi_size=(16, 16), sw_batch_size=2, progress=False)
    inferer = MaskInferer(tiles, timesteps=[0, 100], draws=2, scheduler=DDPMScheduler(1000))
    with torch.no_grad():
        a, b = inferer(x, net), inferer(x, net)
        clean = MaskInferer(tiles)(x, net)
    assert torch.equal(a, b) and a.shape == clean.shape == (1, 4, 16, 16, 3)
    assert not torch.equal(a, clean)  # the noisy passes count


def test_two_levels_differ_from_one_pass_and_the_seed_picks_the_draws():
    net, x = _net(), torch.randn(1, 1, 16, 16)
    ensemble = {s: MaskInferer(timesteps=[0, 50], scheduler=DDPMScheduler(1000), seed=s) for s in (0, 1)}
    with torch.no_grad():
        single = net(x, output="mask")
        a, again, other = ensemble[0](x, net), ensemble[0](x, net), ensemble[1](x, net)
    assert a.shape == single.shape and not torch.equal(a, single)
    assert torch.equal(a, again) and not torch.equal(a, other)


def test_window_inferer_builds_the_ensemble_from_the_recorded_schedule():
    inferer = window_inferer(
        2,
        (16, 16),
        ensemble_timesteps=[0, 50],
        ensemble_draws=3,
        noise_schedule={"num_train_timesteps": 200, "schedule": "linear_beta"},
    )
    assert inferer.passes == 4 and inferer.scheduler.num_train_timesteps == 200
    assert window_inferer(2, (16, 16)).passes == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"timesteps": [0, 50]}, "need the training 'scheduler'"),
        ({"timesteps": [0, 1000], "scheduler": DDPMScheduler(1000)}, "below the schedule's 1000 steps"),
        ({"timesteps": []}, "'timesteps' must be distinct non-negative integers"),
        ({"timesteps": [0, 0]}, "'timesteps' must be distinct non-negative integers"),
        ({"draws": 0}, "'draws' must be a positive integer"),
        ({"timesteps": "[0, 50]"}, "'timesteps' must be a list of integer noise levels"),
        ({"timesteps": 50}, "'timesteps' must be a list of integer noise levels"),
        ({"timesteps": [0, 50.5]}, "'timesteps' must be a list of integer noise levels"),
        ({"timesteps": [0, "a"]}, "'timesteps' must be a list of integer noise levels"),
    ],
)
def test_bad_ensembles_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskInferer(**kwargs)
    if kwargs.get("timesteps") == [0, 50]:
        with pytest.raises(ValueError, match="needs the model's 'noise_schedule'"):
            window_inferer(2, (16, 16), ensemble_timesteps=[0, 50])


def test_window_inferer_leaves_a_bad_level_to_the_named_message():
    with pytest.raises(ValueError, match="'timesteps' must be a list of integer noise levels"):
        window_inferer(2, (16, 16), ensemble_timesteps=[0, "fifty"])
