from __future__ import annotations

import json
import shutil

import pytest
import torch

from monai_hybrid.data import DatalistError
from tests.bundle.conftest import FINETUNE, SAMPLE, cause, pretrain_run, run_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_range_root(tmp_path_factory, tiny_phantom):
    """A tiny hybrid model pretrained over the whole noise range (the only kind ``sample`` accepts)."""
    return pretrain_run(tmp_path_factory, tiny_phantom, "full_range", **{"method#timestep_distribution": "uniform"})


@pytest.fixture
def full_range(full_range_root, tmp_path):
    root = tmp_path / "full_range"
    shutil.copytree(full_range_root, root)
    return root


def _settings(root, folder=("models", "pretrain")):
    return json.loads(root.joinpath(*folder, "model_settings.json").read_text())


def test_sample_bundle_run(full_range):
    assert _settings(full_range)["denoised_timesteps"] == 20  # the tiny schedule's T
    run_config("sample", SAMPLE, full_range, num_samples=2, num_inference_steps=3)
    datalist = json.loads((full_range / "eval" / "samples" / "datalist.json").read_text())
    assert len(datalist["training"]) == 2


def test_a_model_pretrained_on_low_noise_levels_only_is_refused_before_sampling(pretrained):
    # the bundle's default truncated distribution (the tiny settings: t < 5 of 20)
    assert _settings(pretrained)["denoised_timesteps"] == 5
    with pytest.raises(Exception) as info:
        run_config("sample", SAMPLE, pretrained, num_samples=2, num_inference_steps=3)
    message = str(cause(info.value, ValueError))
    assert "model_settings.json: 'denoised_timesteps' is 5" in message and "learned to denoise t < 5 only" in message
    assert "--method#timestep_distribution uniform" in message
    assert not (pretrained / "eval" / "samples").exists()  # refused before any pair is written


def test_a_fine_tuned_model_records_no_denoising_range(pretrained):
    run_config("finetune", FINETUNE, pretrained)
    assert _settings(pretrained, ("models",))["denoised_timesteps"] is None


def _finetune_with_samples(bundle_root, num_samples: int, **overrides):  # bundle_root: a full-range model
    """Sample ``num_samples`` pairs (3 DDIM steps), then fine-tune with them."""
    run_config("sample", SAMPLE, bundle_root, num_samples=num_samples, num_inference_steps=3)
    return run_config("finetune", [*FINETUNE, "finetune_with_samples.yaml"], bundle_root, **overrides)


def test_finetune_with_sampled_pairs(full_range):
    bundle_root = full_range
    wf = _finetune_with_samples(
        bundle_root,
        3,
        pretrained_checkpoint=str(bundle_root / "models" / "pretrain" / "model_final.pt"),
        sampled_share=0.25,
    )
    cases = wf.parser.get_parsed_content("train_cases")
    assert len(cases) == 1 + 3 and all("eval/samples/images" in c["image"] for c in cases[1:])
    weights = wf.parser.get_parsed_content("train#sampler").weights
    assert torch.allclose(weights, torch.tensor([0.75, 0.25 / 3, 0.25 / 3, 0.25 / 3], dtype=weights.dtype))
    assert (bundle_root / "models" / "model.pt").is_file()


def test_finetune_with_sampled_pairs_on_slices(full_range):
    bundle_root = full_range
    wf = _finetune_with_samples(bundle_root, 2, label_unit="slices", num_labeled=2)
    cases = wf.parser.get_parsed_content("train_cases")
    assert [c["slice_z_mm"] for c in cases[2:]] == [0.0, 0.0]


def test_finetune_with_a_missing_sampled_datalist_names_it(pretrained):
    bundle_root = pretrained
    with pytest.raises(Exception) as info:
        run_config(
            "finetune",
            [*FINETUNE, "finetune_with_samples.yaml"],
            bundle_root,
            sampled_datalist=str(bundle_root / "nowhere.json"),
        )
    assert "nowhere.json" in str(cause(info.value, DatalistError))
