"""Fine-tuning that adds a class: the tiny pretrained 4-class model fine-tuned with ``lesion`` appended, on a tiny
FLAIR phantom with white-matter lesions (label 4). The mask head grows: the trained channels keep their weights."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from monai_hybrid.data.phantom import PhantomConfig, generate_phantom
from monai_hybrid.data.sites import ListSizes, site_by_name
from monai_hybrid.networks import transfer_weights
from tests.bundle.conftest import BUNDLE, FINETUNE, TINY_OVERRIDES, handler_index, run_config
from tests.conftest import TINY_RESOLUTION

pytestmark = pytest.mark.slow

TISSUES = ["background", "csf", "grey_matter", "white_matter"]
WITH_LESION = [*TISSUES, "lesion"]
HEAD = ["mask_head.conv.bias", "mask_head.conv.weight"]


@pytest.fixture(scope="module")
def lesion_phantom(tmp_path_factory):
    """The FLAIR site alone, tiny, with lesions: labels 0 to 4 (4 in at least one training scan)."""
    out = tmp_path_factory.mktemp("lesions") / "phantom"
    config = PhantomConfig(
        seed=0, resolution=TINY_RESOLUTION, lesions=True, sites=(site_by_name("site_c_flair"),)
    ).with_sizes(target=ListSizes(training=2, validation=1, test=1, unlabeled=0))
    summary = generate_phantom(out, config, workers=1, progress=False)
    assert summary["class_names"] == WITH_LESION
    site = out / "site_c_flair"
    training = json.loads((site / "datalist.json").read_text())["training"]
    assert any((np.asarray(nib.load(str(site / e["label"])).dataobj) == 4).any() for e in training)
    return out


def _finetune_parser(bundle_root, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in FINETUNE])
    parser.update({**TINY_OVERRIDES, "bundle_root": str(bundle_root), **overrides})
    return parser


def test_the_finetune_config_hands_the_classes_to_the_weight_transfer(tmp_path):
    parser = _finetune_parser(tmp_path)
    handler = parser[f"train#handlers#{handler_index(parser, 'train#handlers', 'PretrainedWeightsHandler')}"]
    assert handler["class_names"] == "@class_names" and handler["new_class_init"] == "@new_class_init"
    assert parser.get_parsed_content("new_class_init") == "zero"


def test_class_weights_from_the_command_line_reach_monai_dice_ce(tmp_path):
    """``--class_weights "{'lesion': 20.0}"`` weights the lesion class in both terms of MONAI's Dice-CE."""
    loss = _finetune_parser(tmp_path, class_names=WITH_LESION, class_weights={"lesion": 20.0}).get_parsed_content(
        "loss"
    )
    expected = torch.tensor([1.0, 1.0, 1.0, 1.0, 20.0])
    assert torch.equal(loss.dice_ce.cross_entropy.weight, expected)
    assert torch.equal(loss.dice_ce.dice.class_weight, expected)
    assert _finetune_parser(tmp_path).get_parsed_content("loss").dice_ce.cross_entropy.weight is None  # default: 1


def test_the_transfer_on_the_finetune_network_keeps_the_trained_channels(pretrained):
    parser = _finetune_parser(pretrained, class_names=WITH_LESION)
    index = handler_index(parser, "train#handlers", "PretrainedWeightsHandler")
    handler = parser.get_parsed_content(f"train#handlers#{index}")
    assert handler.kwargs == {"class_names": WITH_LESION, "new_class_init": "zero"}
    report = transfer_weights(handler.network, handler.load_path, **handler.kwargs)
    trained = torch.load(handler.load_path, weights_only=True)["model"]
    head = handler.network.mask_head.conv
    assert head.weight.shape[0] == 5
    assert torch.equal(head.weight[:4].cpu(), trained["mask_head.conv.weight"])
    assert torch.equal(head.bias[:4].cpu(), trained["mask_head.conv.bias"])
    assert torch.equal(head.weight[4], torch.zeros_like(head.weight[4]))
    lowest = trained["mask_head.conv.bias"].min().item()
    assert head.bias[4].item() == pytest.approx(lowest + math.log(0.01), abs=1e-6)
    assert report.grown == HEAD and report.mask_head["pretrained"] == TISSUES


def test_finetune_with_lesion_appended_grows_the_mask_head_and_trains(pretrained, lesion_phantom):
    wf = run_config(
        "finetune",
        FINETUNE,
        pretrained,
        class_names=WITH_LESION,
        new_class_init="copy:white_matter",
        dataset_dir=str(lesion_phantom),
        num_labeled=0,  # every training scan: the one with lesions among them
    )
    models = pretrained / "models"
    report = json.loads((models / "weight_transfer.json").read_text())
    assert report["grown"] == HEAD and report["reinitialised"] == []
    head = report["mask_head"]
    assert head["action"] == "grown" and head["pretrained"] == TISSUES and head["finetuning"] == WITH_LESION
    assert head["kept"] == [{"channel": i, "class": name} for i, name in enumerate(TISSUES)]
    assert [(a["channel"], a["class"], a["rule"]) for a in head["added"]] == [(4, "lesion", "copy:white_matter")]
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.iteration == TINY_OVERRIDES["iterations_per_epoch"] * TINY_OVERRIDES["epochs"]
    assert json.loads((models / "model_settings.json").read_text())["class_names"] == WITH_LESION
    trained = torch.load(models / "model.pt", weights_only=True)["model"]
    assert trained["mask_head.conv.weight"].shape[0] == 5
