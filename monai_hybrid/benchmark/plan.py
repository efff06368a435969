"""The plan of a benchmark: typed steps (pretrain, fine-tune, zero-shot), each naming the steps it needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monai_hybrid.benchmark.data import is_lesion_site
from monai_hybrid.benchmark.presets import BenchmarkPreset, Budget
from monai_hybrid.benchmark.rows import FINETUNE_TUNING, METHODS, PRETRAININGS

__all__ = [
    "ABLATIONS",
    "FINETUNE_TUNING",
    "LESION_OVERLAYS",
    "LESION_OVERRIDES",
    "FinetuneStep",
    "PretrainStep",
    "Step",
    "ZeroShotStep",
    "finetuning_settings",
    "of_replicates",
    "pretraining_seed",
    "grid_pretrain_step",
    "pretrain_run_name",
    "ready_first",
    "plan_ablations",
    "plan_grid",
]


@dataclass(frozen=True)
class PretrainStep:
    """Pretrain ``mode`` on the source site into ``pretrain/<name>`` with ``seed``.

    Attributes:
        overlays: the bundle's overlays composed on ``pretrain`` (``monai_hybrid.stacks.OVERLAYS``).
        overrides: bundle config keys (the method's settings as ``method#<name>``).
        target_unlabeled: also denoise the target site's unlabelled scans.
    """

    key: str
    name: str
    mode: str
    seed: int = 0
    overlays: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    target_unlabeled: bool = False
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class FinetuneStep:
    """Fine-tune on ``budget`` labels of target site ``site`` (``None``: every training scan, the oracle) and evaluate
    on that site's ``eval_list``.

    Attributes:
        pretrained: the name of the pretraining run to start from; ``None``: from scratch.
        long: ``long_factor`` times the fine-tuning steps.
        semi: denoise the target's unlabelled scans too.
        overrides: bundle config keys of the fine-tuning run.
        cases: the labelled scans (image paths of the target's ``training`` list) chosen by the caller (an active
            learning strategy); ``None``: ``budget`` scans or slices drawn with ``seed``.
        replicate: the unit of replication, the pretraining seed the run starts from (for a row from scratch, the
            one it is grouped with); ``None``: ``seed`` modulo the preset's pretraining seeds.
        overlays: the bundle's overlays composed on the fine-tuning run (``LESION_OVERLAYS`` at a lesion site).
    """

    key: str
    method: str
    budget: Budget | None
    seed: int
    pretrained: str | None
    site: str = "target"
    long: bool = False
    semi: bool = False
    eval_list: str = "test"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    cases: tuple[str, ...] | None = None
    needs: tuple[str, ...] = ()
    replicate: int | None = None
    overlays: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZeroShotStep:
    """Evaluate the source model of pretraining run ``name`` (pretraining seed ``seed``) on the test subjects of
    target site ``site``, not fine-tuned."""

    key: str
    name: str
    seed: int = 0
    site: str = "target"
    needs: tuple[str, ...] = ()


Step = PretrainStep | FinetuneStep | ZeroShotStep

#: The overlays of every fine-tuning run at a lesion site, each row's and the oracle's alike: class-balanced
#: sampling, without which no row, not even the oracle, predicted a lesion (docs/results-lesions.md).
LESION_OVERLAYS: tuple[str, ...] = ("class_balanced",)
#: The bundle overrides of every fine-tuning run at a lesion site, the oracle's too: the lesion class weighted in
#: Dice-CE, without which no row learned it (weight chosen on the lesion site's validation subjects,
#: docs/results-lesions.md).
LESION_OVERRIDES: Mapping[str, Any] = {"class_weights": {"lesion": 50.0}}

_LOW_NOISE = {"method#timestep_distribution": "truncated", "method#t_max": 250}

#: Ablations of the hybrid method's noise-level design and task balance, and of the supervised baseline's
#: augmentation (tuned as much): pretraining overrides (``method#mode`` defaults to hybrid; ``overlays``: the bundle's
#: overlays). Scored on the target's
#: validation subjects.
ABLATIONS: dict[str, dict] = {
    "hybrid, bundle 0.2 defaults (uniform t, mask_weight 0.5)": {
        "method#mask_weight": 0.5,
        "method#timestep_distribution": "uniform",
        "method#mask_weighting": "none",
    },
    "mask_weight 1.0, t < 250": {"method#mask_weight": 1.0, **_LOW_NOISE, "method#mask_weighting": "none"},
    "mask_weight 1.0, lognormal": {
        "method#mask_weight": 1.0,
        "method#timestep_distribution": "lognormal",
        "method#mask_weighting": "none",
    },
    "mask_weight 1.0, uniform, alpha_bar weighting": {
        "method#mask_weight": 1.0,
        "method#timestep_distribution": "uniform",
        "method#mask_weighting": "alpha_bar",
    },
    "mask_weight 1.0, t < 250, alpha_bar weighting": {
        "method#mask_weight": 1.0,
        **_LOW_NOISE,
        "method#mask_weighting": "alpha_bar",
    },
    "mask_weight 1.0, t < 250, epsilon": {
        "method#mask_weight": 1.0,
        **_LOW_NOISE,
        "method#mask_weighting": "none",
        "method#prediction_type": "epsilon",
    },
    "mask_weight 1.0, t < 250, intensity augmentation": {
        "method#mask_weight": 1.0,
        **_LOW_NOISE,
        "method#mask_weighting": "none",
        "overlays": ("intensity_augmentation",),
    },
    "supervised": {"method#mode": "supervised"},
    "supervised, intensity augmentation": {"method#mode": "supervised", "overlays": ("intensity_augmentation",)},
}


def pretraining_seed(step: Step, pretrain_seeds: Sequence[int]) -> int:
    """The pretraining seed ``step`` belongs to: a pretraining or zero-shot run's own seed; a fine-tuning run's
    ``replicate``, or (``None``: a row from scratch, the oracle) the pretraining seed its fine-tuning seed is grouped
    with, ``pretrain_seeds[seed % len(pretrain_seeds)]``."""
    if isinstance(step, FinetuneStep):
        return step.replicate if step.replicate is not None else pretrain_seeds[step.seed % len(pretrain_seeds)]
    return step.seed


def of_replicates(steps: Sequence[Step], replicates: Sequence[int], pretrain_seeds: Sequence[int]) -> list[Step]:
    """The ``steps`` of the pretraining seeds ``replicates`` (``pretraining_seed``): one part of a benchmark that is
    too long for one sitting. Every step a kept step needs is kept with it, as a fine-tuning run belongs to the
    pretraining seed it starts from."""
    wanted = set(replicates)
    return [s for s in steps if pretraining_seed(s, pretrain_seeds) in wanted]


def ready_first(steps: list[Step]) -> list[Step]:
    """``steps`` that need nothing first, each group in its own order: a step that needs another starts after it."""
    return sorted(steps, key=lambda s: bool(s.needs))


def pretrain_run_name(name: str, seed: int) -> str:
    return f"{name}_seed{seed}"


def _pretrain_overrides(preset: BenchmarkPreset, pretraining: str) -> Mapping[str, Any]:
    """The bundle overrides of ``pretraining``'s grid runs: its settings, its own learning rate if it has one, and
    its epochs if it trains longer (``steps_factor``)."""
    spec = PRETRAININGS[pretraining]
    overrides = dict(spec.overrides)
    if pretraining in dict(preset.pretrain_learning_rates):
        overrides["learning_rate"] = preset.pretrain_learning_rate(pretraining)
    if spec.steps_factor != 1:
        overrides["epochs"] = preset.pretrain_epochs * spec.steps_factor
    return overrides


def grid_pretrain_step(preset: BenchmarkPreset, pretraining: str, seed: int) -> PretrainStep:
    """The grid's pretraining run of ``pretraining`` with pretraining seed ``seed`` (at its own rate, if it has one)."""
    spec = PRETRAININGS[pretraining]
    name = preset.pretrain_run_name(pretraining)
    return PretrainStep(
        f"pretrain/{name}/seed{seed}",
        name=pretrain_run_name(name, seed),
        mode=spec.mode,
        seed=seed,
        overlays=spec.overlays,
        overrides=_pretrain_overrides(preset, pretraining),
        target_unlabeled=spec.target_unlabeled,
    )


def plan_grid(preset: BenchmarkPreset, parts: tuple[str, ...] | None = None) -> list[Step]:
    """Every run of the grid's ``parts`` (default: all): the pretraining runs first (each pretraining that a row of
    the parts uses, for each pretraining seed of the preset and of the parts that add some), then the runs that need
    none (scratch, the oracle of each site), then the runs that start from a pretrained model. The zero-shot bounds
    are evaluated at each site for the pretrainings of ``zero_shot`` that some row uses (the preset's pretraining
    seeds; not at a lesion site: a source model has no lesion channel); the convergence control (``long_control``)
    runs at the first target site of the main part, for one fine-tuning seed per pretraining seed, when ``main`` is
    among the parts. A row is fine-tuned with its own ``finetuning`` variant (``finetuning_settings``).

    Raises:
        ValueError: two parts name one fine-tuning run and start it from different pretraining seeds.
    """
    chosen = preset.grid_parts if parts is None else tuple(preset.part(name) for name in parts)
    sites = list(dict.fromkeys(site for part in chosen for site in part.sites))
    control = bool(preset.long_control) and any(part.name == "main" for part in chosen)
    used = {m for part in chosen for m in part.methods} | (set(preset.long_control) if control else set())
    names = sorted({METHODS[m].pretrain for m in used if METHODS[m].pretrain})
    seeds_of = {name: list(preset.pretrain_seeds) for name in names}  # a part may add pretraining seeds
    for part in chosen:
        for name in sorted({METHODS[m].pretrain for m in part.methods if METHODS[m].pretrain}):
            seeds_of[name] += [p for p in part.pretrain_seeds or () if p not in seeds_of[name]]
    run_name = {name: preset.pretrain_run_name(name) for name in names}  # with its own learning rate, if any
    steps: list[Step] = [grid_pretrain_step(preset, name, p) for name in names for p in seeds_of[name]]
    for site in sites:
        for seed in preset.oracle_seeds or preset.seeds:
            steps.append(
                FinetuneStep(
                    f"oracle/{site}/all/seed{seed}",
                    "oracle",
                    None,
                    seed,
                    pretrained=None,
                    site=site,
                    long=True,
                    overlays=LESION_OVERLAYS if is_lesion_site(site) else (),
                    overrides=LESION_OVERRIDES if is_lesion_site(site) else {},
                )
            )
        for name in preset.zero_shot:
            if name in names and not is_lesion_site(site):  # a source model has no channel for the added class
                for p in preset.pretrain_seeds:
                    steps.append(
                        ZeroShotStep(
                            f"zero_shot/{run_name[name]}/{site}/seed{p}",
                            pretrain_run_name(run_name[name], p),
                            seed=p,
                            site=site,
                            needs=(f"pretrain/{run_name[name]}/seed{p}",),
                        )
                    )
    rows = [
        (site, budget, name, False, part.seeds, part.pretrain_seeds or preset.pretrain_seeds)
        for part in chosen
        for site in part.sites
        for budget in part.budgets
        for name in part.methods
    ]
    if control:
        control_seeds = preset.seeds[: len(preset.pretrain_seeds)]  # one fine-tuning seed per pretraining seed
        rows += [
            (preset.target_sites[0], preset.control_budget, name, True, control_seeds, preset.pretrain_seeds)
            for name in preset.long_control
        ]
    seen: dict[str, int] = {}
    for site, budget, name, long_control, seeds, pretrain_seeds in rows:
        method = METHODS[name]
        row = f"{name}_long" if long_control else name
        for seed in seeds:
            key = f"{row}/{site}/{budget.key}/seed{seed}"
            p = pretrain_seeds[seed % len(pretrain_seeds)]
            if key in seen:  # named by two parts: runs once, from the same pretraining
                if seen[key] != p:
                    raise ValueError(
                        f"Preset '{preset.name}': run {key} is named by two parts that start it from pretraining "
                        f"seeds {seen[key]} and {p}; give the part with its own pretraining seeds other "
                        "fine-tuning seeds."
                    )
                continue
            seen[key] = p
            overlays, overrides = finetuning_settings(preset, method.finetuning)
            steps.append(
                FinetuneStep(
                    key,
                    row,
                    budget,
                    seed,
                    pretrained=pretrain_run_name(run_name[method.pretrain], p) if method.pretrain else None,
                    site=site,
                    long=method.long or long_control,
                    semi=method.semi,
                    needs=(f"pretrain/{run_name[method.pretrain]}/seed{p}",) if method.pretrain else (),
                    replicate=p,
                    overrides={**(LESION_OVERRIDES if is_lesion_site(site) else {}), **overrides},
                    overlays=(*(LESION_OVERLAYS if is_lesion_site(site) else ()), *overlays),
                )
            )
    return ready_first(steps)


def plan_ablations(preset: BenchmarkPreset, budget: Budget | None = None) -> list[Step]:
    """The ablations (``ABLATIONS``), scored on the target's *validation* subjects (never the test ones): each
    variant is pretrained once (the first pretraining seed), fine-tuned on ``budget`` (default: 1 scan) for every
    seed and evaluated."""
    budget = budget or Budget(1, "scans")
    steps: list[Step] = []
    for i, (variant, extra) in enumerate(ABLATIONS.items()):
        overrides = dict(extra)
        mode = overrides.pop("method#mode", "hybrid")
        overlays = tuple(overrides.pop("overlays", ()))
        name = f"ablation_{i:02d}"
        seed = preset.pretrain_seeds[0]
        steps.append(
            PretrainStep(f"pretrain/{name}", name=name, mode=mode, seed=seed, overlays=overlays, overrides=overrides)
        )
        prediction = {k: v for k, v in extra.items() if k == "method#prediction_type"}
        for s in preset.seeds:
            steps.append(
                FinetuneStep(
                    f"ablation/{variant}/{budget.key}/seed{s}",
                    variant,
                    budget,
                    s,
                    pretrained=name,
                    site=preset.target_sites[0],
                    eval_list="validation",
                    overrides=prediction,
                    needs=(f"pretrain/{name}",),
                )
            )
    return ready_first(steps)


def finetuning_settings(preset: BenchmarkPreset, variant: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The overlays and bundle overrides of fine-tuning ``variant`` (a key of ``FINETUNE_TUNING``) at ``preset``'s
    fine-tuning steps."""
    spec = FINETUNE_TUNING[variant]
    overrides = dict(spec.get("overrides", {}))
    if "unfreeze" in spec:
        overrides["stages#unfreeze_at"] = round(preset.finetune_steps * spec["unfreeze"])
    return tuple(spec.get("overlays", ())), overrides
