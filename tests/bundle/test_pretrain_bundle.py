from __future__ import annotations

import json

import pytest
import torch

from monai_hybrid.data import DatalistError
from tests.bundle.conftest import PRETRAIN, cause, run_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["hybrid", "supervised", "diffusion", "contrastive"])
def test_pretrain_one_epoch_per_mode(bundle_root, mode):
    wf = run_config("pretrain", PRETRAIN, bundle_root, **{"method#mode": mode})
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.iteration == 2
    models = bundle_root / "models" / "pretrain"
    assert {"model.pt", "model_final.pt", "checkpoint_last.pt"} <= {p.name for p in models.iterdir()}
    last = torch.load(models / "checkpoint_last.pt", weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "trainer"} <= set(last)
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    assert 0.0 <= evaluator.state.metrics["val_mean_dice"] <= 1.0
    assert ("val_denoise_mse" in evaluator.state.metrics) == (mode in ("hybrid", "diffusion"))


def test_pretrain_3d(bundle_root):
    wf = run_config("pretrain", [*PRETRAIN, "3d.yaml"], bundle_root, roi_size=[32, 32, 32], samples_per_volume=1)
    net = wf.parser.get_parsed_content("network_def")
    assert net.spatial_dims == 3
    settings = json.loads((bundle_root / "models" / "pretrain" / "model_settings.json").read_text())
    assert settings["spatial_dims"] == 3 and settings["roi_size"] == [32, 32, 32] and settings["divisible_k"] == 16
    assert (bundle_root / "models" / "pretrain" / "model.pt").is_file()


def test_resume_continues_from_the_last_checkpoint(bundle_root):
    run_config("pretrain", PRETRAIN, bundle_root, epochs=1)
    first = torch.load(bundle_root / "models" / "pretrain" / "checkpoint_last.pt", weights_only=True)
    assert first["trainer"]["iteration"] == 2
    wf = run_config("pretrain", PRETRAIN, bundle_root, epochs=2, resume=True)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2 and trainer.state.iteration == 4
    last = torch.load(bundle_root / "models" / "pretrain" / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 4


def test_resume_without_a_checkpoint_says_so(bundle_root):
    with pytest.raises(Exception) as info:
        run_config("pretrain", PRETRAIN, bundle_root, resume=True)
    err = cause(info.value, FileNotFoundError)
    assert "checkpoint_last.pt' does not exist" in str(err)


def test_bad_user_datalist_fails_before_training(bundle_root):
    datalist = bundle_root / "mine.json"
    datalist.write_text(
        json.dumps({"training": [{"image": "nope.nii.gz", "label": "nope_seg.nii.gz"}], "validation": []})
    )
    with pytest.raises(Exception) as info:
        run_config("pretrain", PRETRAIN, bundle_root, datalist=str(datalist))
    err = cause(info.value, DatalistError)
    assert "training[0] 'image'" in str(err) and "list 'validation': is empty" in str(err)
    assert not (bundle_root / "models" / "pretrain" / "model.pt").exists()
