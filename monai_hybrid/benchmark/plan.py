"""The plan of a benchmark: typed steps (pretrain, fine-tune, zero-shot), each naming the steps it needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monai_hybrid.benchmark.presets import METHODS, BenchmarkPreset, Budget

__all__ = ["ABLATIONS", "FinetuneStep", "PretrainStep", "Step", "ZeroShotStep", "plan_ablations", "plan_grid"]


@dataclass(frozen=True)
class PretrainStep:
    """Pretrain ``mode`` on the source site into ``pretrain/<name>`` (``overrides``: bundle config keys)."""

    key: str
    name: str
    mode: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class FinetuneStep:
    """Fine-tune on ``budget`` target labels (``None``: every training scan, the oracle) and evaluate on the target's
    ``eval_list``.

    Attributes:
        pretrained: the name of the pretraining run to start from; ``None``: from scratch.
        long: ``long_factor`` times the fine-tuning steps.
        semi: denoise the target's unlabelled scans too.
        overrides: bundle config keys of the fine-tuning run.
    """

    key: str
    method: str
    budget: Budget | None
    seed: int
    pretrained: str | None
    long: bool = False
    semi: bool = False
    eval_list: str = "test"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZeroShotStep:
    """Evaluate the source model of pretraining run ``name`` on the target's test subjects, not fine-tuned."""

    key: str
    name: str
    needs: tuple[str, ...] = ()


Step = PretrainStep | FinetuneStep | ZeroShotStep

#: Ablations of the hybrid method's defaults: pretraining overrides (and semi-supervised fine-tuning on or off).
ABLATIONS: dict[str, dict] = {
    "defaults": {},
    "mask_weight=0.1": {"mask_weight": 0.1},
    "mask_weight=1.0": {"mask_weight": 1.0},
    "prediction_type=epsilon": {"prediction_type": "epsilon"},
    "prediction_type=v_prediction": {"prediction_type": "v_prediction"},
    "t0_fraction=0.0": {"t0_fraction": 0.0},
    "t0_fraction=0.2": {"t0_fraction": 0.2},
    "semi-supervised fine-tuning": {},
}


def ready_first(steps: list[Step]) -> list[Step]:
    """``steps`` that need nothing first, each group in its own order: a step that needs another starts after it."""
    return sorted(steps, key=lambda s: bool(s.needs))


def plan_grid(preset: BenchmarkPreset) -> list[Step]:
    """Every run of the grid: the pretraining runs first, then the runs that need none (scratch, the oracle), then
    the runs that start from a pretrained model."""
    modes = sorted({METHODS[m].pretrain for m in preset.methods if METHODS[m].pretrain})
    steps: list[Step] = [PretrainStep(f"pretrain/{mode}", name=mode, mode=mode) for mode in modes]
    for seed in preset.oracle_seeds or preset.seeds:
        steps.append(FinetuneStep(f"oracle/all/seed{seed}", "oracle", None, seed, pretrained=None, long=True))
    for mode in ("hybrid", "supervised"):
        if mode in modes:
            steps.append(ZeroShotStep(f"zero_shot/{mode}", mode, needs=(f"pretrain/{mode}",)))
    for budget in preset.budgets:
        for seed in preset.seeds:
            for name in preset.methods:
                method = METHODS[name]
                steps.append(
                    FinetuneStep(
                        f"{name}/{budget.key}/seed{seed}",
                        name,
                        budget,
                        seed,
                        pretrained=method.pretrain,
                        long=method.long,
                        semi=method.semi,
                        needs=(f"pretrain/{method.pretrain}",) if method.pretrain else (),
                    )
                )
    return ready_first(steps)


def plan_ablations(preset: BenchmarkPreset, budget: Budget | None = None) -> list[Step]:
    """The ablations of the hybrid defaults, scored on the target's *validation* subjects (never the test ones):
    each variant is pretrained, fine-tuned on ``budget`` (default: 1 scan) for every seed and evaluated."""
    budget = budget or Budget(1, "scans")
    steps: list[Step] = []
    for variant, extra in ABLATIONS.items():
        semi = variant.startswith("semi")
        name = "ablation_defaults" if semi or not extra else "ablation_" + variant.replace("=", "_")
        if not any(s.key == f"pretrain/{name}" for s in steps):
            steps.append(PretrainStep(f"pretrain/{name}", name=name, mode="hybrid", overrides=extra))
        prediction = {"prediction_type": extra["prediction_type"]} if "prediction_type" in extra else {}
        for seed in preset.seeds:
            steps.append(
                FinetuneStep(
                    f"ablation/{variant}/{budget.key}/seed{seed}",
                    variant,
                    budget,
                    seed,
                    pretrained=name,
                    semi=semi,
                    eval_list="validation",
                    overrides=prediction,
                    needs=(f"pretrain/{name}",),
                )
            )
    return ready_first(steps)
