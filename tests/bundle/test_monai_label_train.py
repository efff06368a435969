"""configs/train.yaml run the way MONAI Label 0.8.5's bundle train task runs it (monailabel/tasks/train/bundle.py):
the file alone, ``run`` with the datastore's labelled studies, no validation split, a CheckpointLoader of the served
model put first in ``train#handlers``, and ``max_epochs`` from the request."""

from __future__ import annotations

import json
import logging
import os
import shutil

import monai.bundle
import pytest
import torch
import yaml

from monai_hybrid.bundle import default_bundle_dir
from tests.bundle.conftest import TINY_OVERRIDES

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("semi", [False, True])
def test_train_yaml_fine_tunes_from_the_pretrained_model_on_the_datastore_labels(pretrained, tmp_path, semi, caplog):
    caplog.set_level(logging.INFO)
    # a copy of the bundle folder as the repository holds it, as a MONAI user copies a model-zoo bundle
    bundle = tmp_path / "app" / "model" / "hybrid_brain_mri_segmentation"
    shutil.copytree(default_bundle_dir(), bundle, ignore=shutil.ignore_patterns("models"))
    shutil.copytree(pretrained / "models" / "pretrain", bundle / "models" / "pretrain")
    served = bundle / "models" / "model.pt"
    shutil.copy(bundle / "models" / "pretrain" / "model_final.pt", served)  # what the server serves before training
    before = os.stat(served).st_mtime_ns
    site = pretrained / "demo_data" / "site_c_flair"
    datalist = json.loads((site / "datalist.json").read_text())
    labelled = [{"image": str(site / e["image"]), "label": str(site / e["label"])} for e in datalist["training"]]
    # the app's semi-supervised option: the studies without a final label, denoised (HybridTrainTask), with the
    # unlabeled overlay composed on train.yaml for that request
    unlabeled = [{"image": str(site / e["image"])} for e in datalist["unlabeled"]]
    semi_overrides = {"unlabeled_weight": 0.5, "unlabeled#dataset#data": unlabeled} if semi else {}
    train = str(bundle / "configs" / "train.yaml")
    config_file = [train, str(bundle / "configs" / "unlabeled.yaml")] if semi else train
    config = yaml.safe_load((bundle / "configs" / "train.yaml").read_text())
    handlers = config["train"]["handlers"]
    assert not [h for h in handlers if h.get("_target_") == "CheckpointLoader"]  # MONAI Label may add its own
    handlers.insert(0, {"_target_": "CheckpointLoader", "load_path": str(served), "load_dict": {"model": "$@network"}})
    tiny = {k: v for k, v in TINY_OVERRIDES.items() if k not in ("epochs",)}
    monai.bundle.run(
        run_id="run",
        init_id=None,
        final_id=None,
        meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=config_file,
        logging_file=False,
        **{
            "bundle_root": str(bundle),
            "train#trainer#max_epochs": 2,
            "train#dataset#data": labelled,
            "device": torch.device("cpu"),
            "train#handlers": handlers,
            "validate#dataset#data": [],
            **tiny,
            **semi_overrides,
        },
    )
    assert os.stat(served).st_mtime_ns > before  # the served model was replaced
    weights = torch.load(served, weights_only=True)
    assert ("epoch_loss_image" in caplog.text) == semi  # the denoising term trains only with the option
    assert weights["trainer"]["iteration"] == 2 * TINY_OVERRIDES["iterations_per_epoch"]
    report = json.loads((bundle / "models" / "weight_transfer.json").read_text())
    assert report["source"].endswith("models/pretrain/model_final.pt") and report["loaded"]
    settings = json.loads((bundle / "models" / "model_settings.json").read_text())
    assert settings["roi_size"] == TINY_OVERRIDES["roi_size"]
