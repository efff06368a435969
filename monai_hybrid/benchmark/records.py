"""Which benchmark records a report reads: their target site, row order, budget order and cohort, and the grid's
own records apart from the tuning and ablation runs that share a results file."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from monai_hybrid.benchmark.rows import METHODS
from monai_hybrid.options import RunKind

__all__ = [
    "ROW_ORDER",
    "budget_order",
    "cohort_view",
    "complete_sites",
    "control_of",
    "grid_records",
    "ordered_rows",
    "pooled_runs",
    "row_values",
    "site_of",
    "with_replicates",
]


ROW_ORDER = [
    "hybrid",
    "hybrid_ftaug",
    "hybrid_aug",
    "hybrid_synth",
    "hybrid_synth_long",
    "hybrid_target",
    "hybrid_semi",
    "supervised",
    "supervised_ftaug",
    "supervised_aug",
    "supervised_aug_ftaug",
    "supervised_synth",
    "supervised_synth_long",
    "synth",
    "synth_ftaug",
    "diffusion",
    "contrastive",
    "scratch",
    "scratch_long",
]


def site_of(run: dict) -> str:
    return run.get("site", "target")  # records before 0.5 hold one target and no site


def control_of(method: str) -> str | None:
    """The row that ``method`` is the fine-tuning convergence control of (``hybrid_long`` -> ``hybrid``), or None.
    A row of its own that ends in ``_long`` (``scratch_long``, the long schedule from scratch; ``hybrid_synth_long``
    and ``supervised_synth_long``, pretrained longer) is not a control."""
    if method.endswith("_long") and method not in METHODS:
        return method.removesuffix("_long")
    return None


def budget_order(name: str) -> tuple[int, int, str]:
    """Slices before scans, each by count (``"4 slices"`` before ``"16 slices"`` before ``"1 scan"``); a name of
    another form last, as it came."""
    k, _, unit = name.partition(" ")
    if not k.isdigit() or unit.rstrip("s") not in ("slice", "scan"):
        return (2, 0, "")
    return (0 if unit.startswith("slice") else 1, int(k), "")


def ordered_rows(summary: dict) -> list[str]:
    known = [m for m in ROW_ORDER if m in summary]
    return known + sorted(m for m in summary if m not in known)


def pooled_runs(runs: list[dict], sites: list[str]) -> list[dict]:
    """Records pooled over ``sites``: for each row, budget and seed that ran at every one of them, the mean of each
    metric over the sites (site ``pooled``); bounds are pooled alike per pretraining seed."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        if run.get("kind") in (RunKind.FINETUNE, RunKind.BOUND) and site_of(run) in sites:
            groups[(run["kind"], run["method"], run["budget"], run["seed"])].append(run)
    pooled = []
    for (kind, method, budget, seed), members in groups.items():
        if sorted(site_of(r) for r in members) != sorted(sites):
            continue
        record = {"kind": kind, "method": method, "budget": budget, "seed": seed, "site": "pooled"}
        record["replicate"] = members[0].get("replicate", seed)
        for key, value in members[0].items():
            if isinstance(value, float) and key not in record and all(isinstance(m.get(key), float) for m in members):
                record[key] = float(np.mean([m[key] for m in members]))
        pooled.append(record)
    return pooled


def cohort_view(runs: list[dict], cohort: str = "fresh") -> list[dict]:
    """The fine-tuning runs and bounds with their metrics on ``cohort`` (each record's ``fresh`` entry) in place of
    the test subjects'; records without that cohort are left out."""
    out = []
    for run in runs:
        if run.get("kind") in (RunKind.FINETUNE, RunKind.BOUND) and isinstance(run.get(cohort), dict):
            base = {k: v for k, v in run.items() if not isinstance(v, float) or k in ("train_s", "wall_s")}
            out.append({**base, **run[cohort]})
    return out


def grid_records(runs: list[dict]) -> list[dict]:
    """The grid's own records of a benchmark folder: without the tuning and ablation runs that share it (scored on
    validation subjects, they must not pair with the grid's test scores)."""
    others = ("tune/", "ablation/", "pretrain/tune_", "pretrain/ablation_")
    return [r for r in runs if not r.get("key", "").startswith(others) and r.get("eval_list", "test") == "test"]


def with_replicates(runs: list[dict], pretrain_seeds: int) -> list[dict]:
    """``runs`` with every fine-tuning record's pretraining replicate: records written before the replicate was
    stored get it from their seed (``seed % pretrain_seeds``), as the plan assigned it."""
    return [
        {**run, "replicate": run["seed"] % pretrain_seeds}
        if run.get("kind") == RunKind.FINETUNE and "replicate" not in run
        else run
        for run in runs
    ]


def complete_sites(runs: list[dict], methods: tuple[str, ...] | list[str], budgets: list[str]) -> list[str]:
    """The target sites of ``runs`` (in the order they first appear) where every one of ``methods`` has a finite
    mean foreground Dice at every one of ``budgets``: the sites a paired comparison pools over."""

    def scored(site: str, method: str, budget: str) -> bool:
        return any(
            site_of(r) == site
            and r.get("method") == method
            and r.get("budget") == budget
            and isinstance(r.get("mean_fg_dice"), float)
            and math.isfinite(r["mean_fg_dice"])
            for r in runs
        )

    return [
        s for s in dict.fromkeys(site_of(r) for r in runs) if all(scored(s, m, b) for m in methods for b in budgets)
    ]


def row_values(runs: list[dict], method: str, budget: str, metric: str) -> list[float]:
    """``metric`` of every run of ``method`` at ``budget`` that holds a finite value of it (one per site and seed, or
    per seed in pooled runs)."""
    return [
        float(r[metric])
        for r in runs
        if r.get("method") == method and r.get("budget") == budget and isinstance(r.get(metric), (int, float))
        if math.isfinite(r[metric])
    ]
