"""The staged fine-tuning overlay: from the command-line stack, the mask head trains alone, then everything."""

from __future__ import annotations

import pytest
import torch

from monai_hybrid.stacks import config_stack
from tests.bundle.conftest import run_config

pytestmark = pytest.mark.slow


def _pretrained_weights(root):
    return torch.load(root / "models" / "pretrain" / "model_final.pt", map_location="cpu", weights_only=True)["model"]


def test_the_mask_head_alone_for_the_whole_run(pretrained):
    before = _pretrained_weights(pretrained)
    wf = run_config(
        "finetune",
        config_stack("finetune", ["staged_finetuning"]),
        pretrained,
        num_labeled=1,
        **{"stages#unfreeze_at": None},
    )
    network = wf.parser.get_parsed_content("network")
    trains = {n for n, p in network.named_parameters() if p.requires_grad}
    assert trains == {"mask_head.conv.weight", "mask_head.conv.bias"}
    after = network.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before if not n.startswith("mask_head."))
    assert not torch.equal(before["mask_head.conv.weight"], after["mask_head.conv.weight"])


def test_everything_trains_after_unfreeze_at(pretrained):
    wf = run_config(
        "finetune",
        config_stack("finetune", ["staged_finetuning"]),
        pretrained,
        num_labeled=1,
        **{"stages#unfreeze_at": 1},
    )
    network = wf.parser.get_parsed_content("network")
    assert all(p.requires_grad for p in network.parameters())
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.iteration >= 2  # iteration 2 ran with everything trainable
