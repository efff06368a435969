from __future__ import annotations

import json

import pytest
import torch

from monai_hybrid.data import DatalistError
from tests.bundle.conftest import FINETUNE, SAMPLE, cause, run_config

pytestmark = pytest.mark.slow


def test_sample_bundle_run(pretrained):
    bundle_root = pretrained
    run_config("sample", SAMPLE, bundle_root, num_samples=2, num_inference_steps=3)
    datalist = json.loads((bundle_root / "eval" / "samples" / "datalist.json").read_text())
    assert len(datalist["training"]) == 2


def _finetune_with_samples(bundle_root, num_samples: int, **overrides):
    """Sample ``num_samples`` pairs (3 DDIM steps), then fine-tune with them."""
    run_config("sample", SAMPLE, bundle_root, num_samples=num_samples, num_inference_steps=3)
    return run_config("finetune", [*FINETUNE, "finetune_with_samples.yaml"], bundle_root, **overrides)


def test_finetune_with_sampled_pairs(pretrained):
    bundle_root = pretrained
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


def test_finetune_with_sampled_pairs_on_slices(pretrained):
    bundle_root = pretrained
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
