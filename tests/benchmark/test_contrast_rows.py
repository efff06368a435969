"""The rows of contrast randomisation inside hybrid pretraining (hybrid_aug, hybrid_synth): planned like the other
rows, each from a hybrid pretraining with its overlay, and reported without code of their own."""

from __future__ import annotations

import dataclasses

import pytest

from monai_hybrid.benchmark import PRESETS, PRETRAININGS, TUNING, markdown_table, plan_grid, plan_tuning
from monai_hybrid.benchmark.plan import FinetuneStep, PretrainStep, ZeroShotStep
from monai_hybrid.benchmark.rows import MR_SYNTHESIS, Pretraining
from monai_hybrid.bundle import default_bundle_dir
from monai_hybrid.stacks import config_stack

TINY = PRESETS["tiny"]
ROWS = {"hybrid_aug": "intensity_augmentation", "hybrid_synth": "synthesis"}


def test_the_rows_are_hybrid_pretrainings_with_their_overlay():
    settings = {"hybrid_aug": {}, "hybrid_synth": MR_SYNTHESIS}
    for row, overlay in ROWS.items():
        spec = PRETRAININGS[row]
        assert (spec.mode, spec.overlays, dict(spec.overrides), spec.target_unlabeled) == (
            "hybrid",
            (overlay,),
            settings[row],
            False,
        )
    # the baselines they mirror: the same overlays and settings on a supervised pretraining
    assert PRETRAININGS["supervised_aug"].overlays == PRETRAININGS["hybrid_aug"].overlays
    twin = PRETRAININGS["supervised_synth"]
    assert (twin.mode, twin.overlays, twin.overrides) == ("supervised", ("synthesis",), MR_SYNTHESIS)
    assert PRETRAININGS["synth"].overrides == {}  # the crude row: one Gaussian per tissue class
    # every setting names a key of the synthesis overlay, so the bundle takes it
    synthesis = (default_bundle_dir() / "configs" / "synthesis.yaml").read_text()
    assert all(f"\n{key}: " in synthesis for key in MR_SYNTHESIS) and MR_SYNTHESIS["synthesis_clusters"] > 1


def test_the_grid_plans_a_hybrid_pretraining_with_the_overlay_for_each_row():
    preset = dataclasses.replace(TINY, methods=("hybrid", *ROWS), zero_shot=("hybrid", "hybrid_synth"))
    steps = plan_grid(preset)
    pretrain = {s.key: s for s in steps if isinstance(s, PretrainStep)}
    assert set(pretrain) == {"pretrain/hybrid/seed0", "pretrain/hybrid_aug/seed0", "pretrain/hybrid_synth/seed0"}
    for row, overlay in ROWS.items():
        step = pretrain[f"pretrain/{row}/seed0"]
        assert (step.name, step.mode, step.overlays) == (f"{row}_seed0", "hybrid", (overlay,))
        assert config_stack("pretrain", step.overlays) == ["common.yaml", "pretrain.yaml", f"{overlay}.yaml"]
        (finetune,) = [s for s in steps if isinstance(s, FinetuneStep) and s.method == row]
        assert finetune.pretrained == f"{row}_seed0" and finetune.needs == (f"pretrain/{row}/seed0",)
    assert pretrain["pretrain/hybrid/seed0"].overlays == ()
    zero_shot = [s.key for s in steps if isinstance(s, ZeroShotStep)]
    assert "zero_shot/hybrid_synth/site_c_flair/seed0" in zero_shot
    # a row left out plans no pretraining of its own
    assert not any("hybrid_aug" in s.key for s in plan_grid(dataclasses.replace(TINY, methods=("hybrid_synth",))))


def test_the_tuning_gives_the_rows_their_overlay_in_every_variant():
    steps = plan_tuning(dataclasses.replace(TINY, methods=tuple(ROWS)))
    pretrain = [s for s in steps if isinstance(s, PretrainStep)]
    assert len(pretrain) == 2 * len(TUNING)  # every learning rate of the tuning, for each row
    for step in pretrain:
        row = "hybrid_aug" if "hybrid_aug" in step.name else "hybrid_synth"
        assert step.mode == "hybrid" and step.overlays == (ROWS[row],), step


def test_the_report_lists_the_rows_without_code_of_their_own():
    runs = [
        {"kind": "finetune", "method": method, "budget": "1 scan", "mean_fg_dice": dice, "seed": 0}
        for method, dice in (("hybrid", 0.8), ("hybrid_synth", 0.7), ("hybrid_aug", 0.75))
    ]
    table = markdown_table(runs, ["1 scan"])
    assert "| hybrid_aug | 0.750 (n = 1) |" in table and "| hybrid_synth | 0.700 (n = 1) |" in table


def test_the_long_synthesis_row_trains_more_epochs_of_the_same_length_at_hybrid_synths_rate():
    cpu = PRESETS["cpu"]
    steps = {s.key: s for s in plan_grid(cpu, ("synthesis_long",))}
    short, long = steps["pretrain/hybrid_synth_lr5e-4/seed2"], steps["pretrain/hybrid_synth_long_lr5e-4/seed2"]
    assert dict(long.overrides) == {**short.overrides, "epochs": 4 * cpu.pretrain_epochs}
    assert "epochs" not in short.overrides and long.overlays == short.overlays and long.mode == short.mode
    tuned = steps["hybrid_synth_long/site_b_t2w/slices4/seed2"]
    assert tuned.pretrained == "hybrid_synth_long_lr5e-4_seed2" and tuned.replicate == 2
    assert steps["hybrid_synth/site_b_t2w/slices4/seed2"].replicate == 2  # paired on the same labelled cases
    with pytest.raises(ValueError, match="'steps_factor' must be a positive integer"):
        Pretraining("bad", "hybrid", steps_factor=0)
