"""The staged fine-tuning overlay: from the command-line stack, the mask head trains alone, then everything."""

from __future__ import annotations

import pytest
import torch

from monai_hybrid.stacks import config_stack
from tests.bundle.conftest import run_config, users_datalist

from .test_site_frictions import _bundle_command

pytestmark = pytest.mark.slow


def _pretrained_weights(root):
    return torch.load(root / "models" / "pretrain" / "model_final.pt", map_location="cpu", weights_only=True)["model"]


def _finetune_staged(root, unfreeze_at):
    """Fine-tune ``root``'s pretrained model with the staged_finetuning overlay; the trained network and trainer."""
    overrides = {"stages#unfreeze_at": unfreeze_at}
    wf = run_config("finetune", config_stack("finetune", ["staged_finetuning"]), root, num_labeled=1, **overrides)
    return wf.parser.get_parsed_content("network"), wf.parser.get_parsed_content("train#trainer")


def test_the_mask_head_alone_for_the_whole_run(pretrained):
    before = _pretrained_weights(pretrained)
    network, _ = _finetune_staged(pretrained, None)
    trains = {n for n, p in network.named_parameters() if p.requires_grad}
    assert trains == {"mask_head.conv.weight", "mask_head.conv.bias"}
    after = network.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before if not n.startswith("mask_head."))
    assert not torch.equal(before["mask_head.conv.weight"], after["mask_head.conv.weight"])


def test_everything_trains_after_unfreeze_at(pretrained):
    network, trainer = _finetune_staged(pretrained, 1)
    assert all(p.requires_grad for p in network.parameters())
    assert trainer.state.iteration >= 2  # iteration 2 ran with everything trainable


def test_staged_and_augmented_fine_tuning_from_the_command_line_on_a_users_datalist(pretrained, tmp_path):
    mine = users_datalist(pretrained, ("training", "validation"), tmp_path / "mine.json")
    proc = _bundle_command(
        "finetune",
        config_stack("finetune", ["intensity_augmentation", "staged_finetuning"]),
        pretrained,
        datalist=mine,
        **{"stages#unfreeze_at": 1, "stages#trainable": "input_norm"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (pretrained / "models" / "model.pt").is_file()
    log = proc.stderr + proc.stdout
    assert "input_norm" in log and "every parameter" in log  # the stages as the log names them
