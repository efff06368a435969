"""Pseudo-labels of the unlabelled scans while fine-tuning: the overlay from the config stack (the teacher starts from
the pretrained weights, the loss has the term), and switched on from the command line on a user's own datalist."""

from __future__ import annotations

import pytest
import torch

from monai_hybrid.stacks import config_stack
from tests.bundle.conftest import run_config, users_datalist

from .test_site_frictions import _bundle_command

pytestmark = pytest.mark.slow


def test_the_teacher_starts_from_the_pretrained_weights_and_the_loss_learns_its_labels(pretrained):
    before = torch.load(pretrained / "models" / "pretrain" / "model_final.pt", map_location="cpu", weights_only=True)
    stack = config_stack("finetune", ["unlabeled", "pseudo_labels"])
    wf = run_config(
        "finetune", stack, pretrained, num_labeled=1, **{"pseudo_labels#rampup": 0, "pseudo_labels#threshold": 0.0}
    )
    labeler = wf.parser.get_parsed_content("pseudo_labeler")
    assert wf.parser.get_parsed_content("train#trainer").state.iteration == 2
    teacher = labeler.teacher.module.state_dict()
    # two updates at decay 0.99 from the pretrained weights: 98% of the teacher is still them
    for name in ("unet.conv_in.conv.weight", "mask_head.conv.weight"):
        start, now = before["model"][name], teacher[name]
        assert (now - start).abs().max() < 0.05 * start.abs().max(), name
    terms = wf.parser.get_parsed_content("loss").last_terms
    assert terms["loss_pseudo"] > 0 and "loss_image" not in terms  # threshold 0: every voxel labelled
    assert not wf.parser.get_parsed_content("validate_denoising")


def test_pseudo_labels_from_the_command_line_on_a_users_datalist(pretrained, tmp_path):
    mine = users_datalist(pretrained, ("training", "validation", "unlabeled"), tmp_path / "mine.json")
    proc = _bundle_command(
        "finetune",
        config_stack("finetune", ["unlabeled", "pseudo_labels"]),
        pretrained,
        datalist=mine,
        **{"pseudo_labels#timesteps": [0, 2], "pseudo_labels#draws": 2, "unlabeled_weight": 0.5},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (pretrained / "models" / "model.pt").is_file()
    assert "noise levels [0, 2]" in proc.stderr + proc.stdout
