"""Equal care for fine-tuning: every row gets the same fine-tuning variants (rows.FINETUNE_TUNING) from its grid
pretraining, scored on validation subjects, and the report chooses one per row."""

from __future__ import annotations

import dataclasses
import json

import pytest

from monai_hybrid.benchmark import (
    FINETUNE_TUNING,
    PRESETS,
    BenchmarkRunner,
    Method,
    plan_finetune_tuning,
    plan_grid,
    write_tuning_report,
)
from monai_hybrid.benchmark.plan import FinetuneStep, PretrainStep, finetuning_settings

CPU = PRESETS["cpu"]
ROWS = ("hybrid", "supervised_aug", "synth", "hybrid_synth", "scratch")


def test_every_row_gets_the_same_variants_from_its_grid_pretraining_on_validation_subjects():
    steps = plan_finetune_tuning(CPU, ROWS)
    finetunes = [s for s in steps if isinstance(s, FinetuneStep)]
    for row in ROWS:
        mine = [s for s in finetunes if s.method.startswith(f"{row} | ")]
        assert {s.method.split(" | ")[1] for s in mine} == set(FINETUNE_TUNING)
        assert {s.site for s in mine} == set(CPU.target_sites) and len(mine) == len(FINETUNE_TUNING) * 3
    assert {s.eval_list for s in finetunes} == {"validation"}  # the test subjects choose nothing
    assert {s.budget.name for s in finetunes} == {"1 slice"}
    # the pretraining runs are the grid's (synth and hybrid_synth at their own rate), shared; scratch starts from none
    grid = {s.key: s for s in plan_grid(CPU) if isinstance(s, PretrainStep)}
    pretrains = {s.key: s for s in steps if isinstance(s, PretrainStep)}
    assert set(pretrains) == {
        "pretrain/hybrid/seed0",
        "pretrain/supervised_aug/seed0",
        "pretrain/synth_lr5e-4/seed0",
        "pretrain/hybrid_synth_lr5e-4/seed0",
    }
    assert all(pretrains[k] == grid[k] for k in pretrains)
    scratch = [s for s in finetunes if s.method.startswith("scratch |")]
    assert all(s.pretrained is None and s.needs == () for s in scratch)
    # what each variant composes: the grid's own fine-tuning, two stagings, augmentation
    by_variant = {s.method.split(" | ")[1]: s for s in finetunes if s.method.startswith("hybrid |")}
    assert (by_variant["all"].overlays, dict(by_variant["all"].overrides)) == ((), {})
    assert by_variant["head then all"].overlays == ("staged_finetuning",)
    assert dict(by_variant["head then all"].overrides) == {"stages#unfreeze_at": 100}  # 2/3 of the 150 steps
    assert by_variant["short head then all"].overlays == ("staged_finetuning",)
    assert dict(by_variant["short head then all"].overrides) == {"stages#unfreeze_at": 50}  # the bundle's 1/3
    assert dict(by_variant["input and norms"].overrides) == {
        "stages#trainable": "input_norm",
        "stages#unfreeze_at": None,
    }
    assert by_variant["augmented"].overlays == ("intensity_augmentation",)
    # the target's unlabelled scans: denoised, or pseudo-labelled with or without the noise levels' agreement
    assert (by_variant["denoising unlabelled"].overlays, dict(by_variant["denoising unlabelled"].overrides)) == (
        ("unlabeled",),
        {},
    )
    assert by_variant["pseudo-labels"].overlays == ("unlabeled", "pseudo_labels")
    assert dict(by_variant["pseudo-labels"].overrides) == {}
    agreed = by_variant["noise-agreed pseudo-labels"]
    assert agreed.overlays == ("unlabeled", "pseudo_labels")
    assert dict(agreed.overrides) == {"pseudo_labels#timesteps": [0, 50, 100, 150]}
    with pytest.raises(ValueError, match="row 'hybrid_semi' fine-tunes its own way"):
        plan_finetune_tuning(CPU, ("hybrid_semi",))


def test_a_tuning_can_run_some_variants_only(tmp_path):
    steps = plan_finetune_tuning(CPU, ("hybrid",), variants=("all", "pseudo-labels"))
    finetunes = [s for s in steps if isinstance(s, FinetuneStep)]
    assert {s.method for s in finetunes} == {"hybrid | all", "hybrid | pseudo-labels"} and len(finetunes) == 6
    # the runner's tuning (monai-hybrid benchmark --tune-finetuning --variants ... --seeds 2)
    runner = BenchmarkRunner(tmp_path, dataclasses.replace(CPU, methods=("hybrid",)), track=False, progress=False)
    planned = runner.plan(finetune_tuning=True, variants=("pseudo-labels",), tuning_seeds=(0, 1))
    planned = [s for s in planned if isinstance(s, FinetuneStep)]
    assert {s.method for s in planned} == {"hybrid | pseudo-labels"} and {s.seed for s in planned} == {0, 1}
    assert len(planned) == 6
    with pytest.raises(ValueError, match=r"unknown variants \['frozen'\]"):
        plan_finetune_tuning(CPU, ("hybrid",), variants=("frozen",))


def test_the_report_chooses_each_rows_variant_in_its_own_file(tmp_path):
    finetunes = [s for s in plan_finetune_tuning(CPU, ("hybrid", "scratch")) if isinstance(s, FinetuneStep)]
    runs = [
        {
            "kind": "finetune",
            "key": s.key,
            "method": s.method,
            "budget": s.budget.name,
            "site": s.site,
            "seed": s.seed,
            "replicate": 0,
            "mean_fg_dice": 0.6 if s.method in ("hybrid | augmented", "scratch | all") else 0.5,
        }
        for s in finetunes
    ]
    # a pretraining tuning's run in the same folder is left to tuning.md
    runs.append({**runs[0], "key": "tune/hybrid/lr5e-4/site_c_flair/slices1/seed0", "method": "hybrid | lr5e-4"})
    _, chosen = write_tuning_report(runs, tmp_path, "finetuning")
    assert chosen == {"hybrid": "augmented", "scratch": "all"}
    text = (tmp_path / "tuning_finetuning.md").read_text()
    assert "fine-tuning variants" in text and "| hybrid (augmented) | 0.600" in text and "lr5e-4" not in text
    # each variant paired with the row's plain fine-tuning, on the same sites and seeds: +0.1 at every site
    assert "| hybrid (augmented) | +0.100 [+0.100, +0.100] (3/3) ahead |" in text
    assert "| scratch (augmented) | -0.100 [-0.100, -0.100] (0/3) behind |" in text
    assert not (tmp_path / "tuning.md").exists()
    with pytest.raises(ValueError, match="'kind' must be one of"):
        write_tuning_report(runs, tmp_path, "inference")


@pytest.mark.slow
def test_the_variants_run_end_to_end_on_a_users_datalists(tiny_phantom, tmp_path):
    root, _ = tiny_phantom
    preset = dataclasses.replace(PRESETS["tiny"], methods=("hybrid",))
    runner = BenchmarkRunner(
        tmp_path,
        preset,
        source_datalist=root / "site_a_t1w" / "datalist.json",
        target_datalist=root / "site_c_flair" / "datalist.json",
        progress=False,
        track=False,
    )
    runs = runner.run(finetune_tuning=True)
    tuned = {r["method"]: r for r in runs if r["key"].startswith("tune_ft/")}
    assert set(tuned) == {f"hybrid | {v}" for v in FINETUNE_TUNING}
    assert all(0.0 <= r["mean_fg_dice"] <= 1.0 and r["eval_list"] == "validation" for r in tuned.values())
    assert tuned["hybrid | input and norms"]["overlays"] == ["staged_finetuning"]
    assert tuned["hybrid | input and norms"]["overrides"]["stages#trainable"] == "input_norm"
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["key"] == "pretrain/hybrid/seed0"


def test_a_row_at_its_chosen_fine_tuning_starts_from_the_same_pretraining_with_the_variant_composed():
    steps = {
        s.key: s
        for s in plan_grid(CPU, ("rows_contrasts", "tuned_finetuning", "tuned_finetuning_rows"))
        if isinstance(s, FinetuneStep)
    }
    for row, base in (("hybrid_ftaug", "hybrid"), ("supervised_aug_ftaug", "supervised_aug"), ("synth_ftaug", "synth")):
        tuned, plain = steps[f"{row}/site_b_t2w/slices1/seed2"], steps[f"{base}/site_b_t2w/slices1/seed2"]
        assert (tuned.pretrained, tuned.needs, tuned.replicate) == (plain.pretrained, plain.needs, plain.replicate)
        assert tuned.overlays == ("intensity_augmentation",) and plain.overlays == ()
        assert dict(tuned.overrides) == dict(plain.overrides) == {}
    # hybrid's hybrid-free twin gets the same fine-tuning
    assert steps["supervised_ftaug/site_d_pd/scans1/seed0"].overlays == ("intensity_augmentation",)
    # a staged variant's unfreezing step follows the preset's fine-tuning steps
    assert finetuning_settings(CPU, "head then all") == (("staged_finetuning",), {"stages#unfreeze_at": 100})
    with pytest.raises(ValueError, match="row 'hybrid_ftaug' fine-tunes its own way"):
        plan_finetune_tuning(CPU, ("hybrid_ftaug",))
    with pytest.raises(ValueError, match="finetuning must be one of"):
        Method("hybrid_frozen", "hybrid", finetuning="frozen")
