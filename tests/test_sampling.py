from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from monai_hybrid.model_settings import save_model_settings
from monai_hybrid.networks import HybridDiffusionUNet
from monai_hybrid.sampling import check_samplable, generate_pairs, sample_pairs
from tests.bundle.conftest import TINY_SETTINGS

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_head_channels=8, norm_num_groups=8)


def _net(dims):
    torch.manual_seed(0)
    net = HybridDiffusionUNet(dims, 1, 3, **TINY)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("dims,spatial", [(2, (16, 16)), (3, (16, 16, 16))])
@pytest.mark.parametrize("scheduler", [DDIMScheduler, DDPMScheduler])
def test_shapes(dims, spatial, scheduler):
    images, labels = sample_pairs(
        _net(dims),
        scheduler(num_train_timesteps=20, clip_sample=False),
        4,
        (2, 1, *spatial),
        generator=torch.Generator().manual_seed(0),
    )
    assert images.shape == (2, 1, *spatial) and labels.shape == (2, 1, *spatial)
    assert images.min() >= -1 and images.max() <= 1 and labels.max() < 3


@pytest.mark.parametrize("scheduler", [DDIMScheduler, DDPMScheduler])
def test_same_seed_same_pairs_and_datalist(tmp_path, scheduler):
    sched = scheduler(num_train_timesteps=20, clip_sample=False)
    paths = [
        generate_pairs(
            _net(2),
            sched,
            tmp_path / f"run{i}",
            num_samples=3,
            batch_size=2,
            spatial_shape=(16, 16),
            pixdim=(3.0, 3.0, 3.0),
            num_inference_steps=4,
            seed=7,
            progress=False,
        )
        for i in range(2)
    ]
    lists = [json.loads(p.read_text()) for p in paths]
    assert len(lists[0]["training"]) == 3
    for a, b in zip(lists[0]["training"], lists[1]["training"], strict=False):
        img_a = nib.load(str(paths[0].parent / a["image"]))
        img_b = nib.load(str(paths[1].parent / b["image"]))
        np.testing.assert_array_equal(np.asarray(img_a.dataobj), np.asarray(img_b.dataobj))
        assert img_a.shape == (16, 16, 1)
        np.testing.assert_allclose(np.diag(img_a.affine)[:3], 3.0)
        lab = np.asarray(nib.load(str(paths[0].parent / a["label"])).dataobj)
        assert lab.dtype == np.uint8 and lab.max() < 3
    other = generate_pairs(_net(2), sched, tmp_path / "other", 1, 1, (16, 16), (3, 3, 3), 4, seed=8, progress=False)
    first = json.loads(other.read_text())["training"][0]["image"]
    assert not np.array_equal(
        np.asarray(nib.load(str(other.parent / first)).dataobj),
        np.asarray(nib.load(str(paths[0].parent / lists[0]["training"][0]["image"])).dataobj),
    )


@pytest.mark.parametrize(
    "denoised, message",
    [
        (0, "'denoised_timesteps' is 0: the image head of .*model.pt was never trained to denoise"),
        (
            250,
            "'denoised_timesteps' is 250: .*learned to denoise t < 250 only, and sampling starts from pure noise at "
            "t = 999",
        ),
    ],
)
def test_a_model_that_did_not_learn_every_noise_level_is_refused(tmp_path, denoised, message):
    save_model_settings({**TINY_SETTINGS, "denoised_timesteps": denoised}, tmp_path)
    with pytest.raises(ValueError, match=message):
        check_samplable(tmp_path / "model.pt", 1000)


def test_a_full_range_model_is_accepted_and_an_unrecorded_range_only_warned(tmp_path, caplog):
    save_model_settings({**TINY_SETTINGS, "denoised_timesteps": 1000}, tmp_path / "full")
    assert check_samplable(tmp_path / "full" / "model.pt", 1000) == 1000
    save_model_settings(TINY_SETTINGS, tmp_path / "unknown")
    assert check_samplable(tmp_path / "unknown" / "model.pt", 1000) is None
    assert "does not record 'denoised_timesteps'" in caplog.text
    assert check_samplable(tmp_path / "nowhere" / "model.pt", 1000) is None
    assert "cannot tell which noise levels" in caplog.text
