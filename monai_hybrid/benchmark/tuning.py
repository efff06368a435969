"""Equal care: the tuning runs of a benchmark, every row given the same variants, scored on validation subjects."""

from __future__ import annotations

from typing import Any

from monai_hybrid.benchmark.plan import (
    FinetuneStep,
    PretrainStep,
    Step,
    finetuning_settings,
    grid_pretrain_step,
    pretrain_run_name,
    ready_first,
)
from monai_hybrid.benchmark.presets import BenchmarkPreset, Budget
from monai_hybrid.benchmark.rows import FINETUNE_TUNING, METHODS, PRETRAININGS

__all__ = ["TUNING", "TUNING_BUDGETS", "plan_tuning", "plan_finetune_tuning"]


#: Equal care: the pretraining variants every row gets, the same number and the same kind for each (the pretraining
#: learning rate from 2.5e-4 to 2e-3 in factors of 2), scored on the *validation* subjects of every target site. The
#: variant at the preset's own learning rate is the row's grid pretraining (pretraining seed ``pretrain_seeds[0]``),
#: run once for both. A variant's pretraining folder is named by its place here (``tune_<pretraining>_<i>``), so new
#: variants go last: 2.5e-4 was added when both key rows of the bundle preset chose 5e-4, the smallest of the first
#: three (the stored cpu tuning ran those three).
TUNING: dict[str, dict] = {
    "lr5e-4": {"learning_rate": 5e-4},
    "lr1e-3": {"learning_rate": 1e-3},
    "lr2e-3": {"learning_rate": 2e-3},  # the cpu preset's, chosen by this tuning
    "lr2.5e-4": {"learning_rate": 2.5e-4},
}


#: The budget the variants are scored at: the scarcest of the grid's main part, where the recipe issue asks for a
#: win (1 scan was dropped to fit the cpu preset's tuning into one session on 2 cores: 36 fine-tunings, not 72).
TUNING_BUDGETS = (Budget(1, "slices"),)


def _validation_runs(
    preset: BenchmarkPreset, prefix: str, method: str, seeds: tuple[int, ...], **fields: Any
) -> list[FinetuneStep]:
    """A tuning variant's fine-tunings on ``TUNING_BUDGETS`` at every target site of the main part for ``seeds``,
    scored on the *validation* subjects; keys ``<prefix>/<site>/<budget>/seed<s>``, ``fields`` the steps' others."""
    return [
        FinetuneStep(
            f"{prefix}/{site}/{budget.key}/seed{seed}",
            method,
            budget,
            seed,
            site=site,
            eval_list="validation",
            **fields,
        )
        for site in preset.target_sites
        for budget in TUNING_BUDGETS
        for seed in seeds
    ]


def plan_tuning(
    preset: BenchmarkPreset, rows: tuple[str, ...] | None = None, seeds: tuple[int, ...] = (0,)
) -> list[Step]:
    """Each of ``rows`` (default: the preset's main rows that start from a pretraining) pretrained with each variant
    of ``TUNING`` (pretraining seed ``pretrain_seeds[0]``), fine-tuned on ``TUNING_BUDGETS`` at every target site of
    the main part for ``seeds`` (default: fine-tuning seed 0 alone, one run per site and variant, to fit the cpu
    preset's tuning into a session on 2 cores), and scored on the sites' *validation* subjects (never the test
    ones)."""
    rows = rows or tuple(m for m in preset.methods if METHODS[m].pretrain)
    p = preset.pretrain_seeds[0]
    steps: list[Step] = []
    for row in rows:
        spec = PRETRAININGS[METHODS[row].pretrain]
        for i, (variant, overrides) in enumerate(TUNING.items()):
            # the variant at the row's own learning rate is its grid pretraining
            if overrides.get("learning_rate") == preset.pretrain_learning_rate(spec.name):
                pretrain = grid_pretrain_step(preset, spec.name, p)
            else:
                name = f"tune_{spec.name}_{i}"
                pretrain = PretrainStep(
                    f"pretrain/{name}/seed{p}",
                    name=pretrain_run_name(name, p),
                    mode=spec.mode,
                    seed=p,
                    overlays=spec.overlays,
                    overrides={**spec.overrides, **overrides},
                    target_unlabeled=spec.target_unlabeled,
                )
            if pretrain not in steps:
                steps.append(pretrain)
            steps += _validation_runs(
                preset,
                f"tune/{row}/{variant}",
                f"{row} | {variant}",
                seeds,
                pretrained=pretrain.name,
                needs=(pretrain.key,),
            )
    return ready_first(steps)


def plan_finetune_tuning(
    preset: BenchmarkPreset,
    rows: tuple[str, ...] | None = None,
    seeds: tuple[int, ...] = (0,),
    variants: tuple[str, ...] | None = None,
) -> list[Step]:
    """Each of ``rows`` (default: the preset's main rows) fine-tuned with each of ``variants`` (default: every variant
    of ``FINETUNE_TUNING``) from its grid pretraining (the first pretraining seed, at the row's own learning rate; a
    row from scratch from none) on ``TUNING_BUDGETS`` at every target site of the main part for ``seeds``, scored on
    the sites' *validation* subjects (never the test ones). Keys ``tune_ft/<row>/<variant>/<site>/<budget>/seed<s>``;
    the pretraining runs are the grid's, shared with it.

    Raises:
        ValueError: a row fine-tunes its own way, or ``variants`` names one that ``FINETUNE_TUNING`` does not hold.
    """
    unknown = [v for v in variants or () if v not in FINETUNE_TUNING]
    if unknown:
        raise ValueError(f"plan_finetune_tuning: unknown variants {unknown}; choose among {list(FINETUNE_TUNING)}.")
    rows = rows or preset.methods
    p = preset.pretrain_seeds[0]
    steps: list[Step] = []
    for row in rows:
        method = METHODS[row]
        if method.long or method.semi or method.finetuning != "all":
            raise ValueError(f"plan_finetune_tuning: row {row!r} fine-tunes its own way; tune the plain rows.")
        needs: tuple[str, ...] = ()
        pretrained = None
        if method.pretrain:
            pretrain = grid_pretrain_step(preset, method.pretrain, p)
            needs, pretrained = (pretrain.key,), pretrain.name
            if pretrain not in steps:
                steps.append(pretrain)
        for variant in variants or FINETUNE_TUNING:
            overlays, overrides = finetuning_settings(preset, variant)
            steps += _validation_runs(
                preset,
                f"tune_ft/{row}/{variant}",
                f"{row} | {variant}",
                seeds,
                pretrained=pretrained,
                overrides=overrides,
                needs=needs,
                replicate=p,
                overlays=overlays,
            )
    return ready_first(steps)
