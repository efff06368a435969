"""How the default recipe's gap to a baseline moves with pretraining compute: several stored benchmarks (points of
the compute axis, ``presets.compute_point``), each row's pooled fresh-cohort scores and the paired difference at each
point against the FLOPs of its pretraining, and a generated sentence per budget and metric on the trend.

Points are grouped into series: the points of one series differ only in their pretraining length (``compute_point``;
the `cpu` preset and its x4 and x16 are one series, `bundle` and `bundle_x4` another) and ran on one machine (a trend
compares its points, so the points of another machine make a series of their own), and each series is pooled over
the target sites all its points share. Per series, the trend is the line of the difference on log10 FLOPs with the
pretraining seed as its unit (``paired_trend``): every point fine-tunes seed s on the same labelled cases, so each
seed's own line is fitted and the slope's interval is Student's t over the seeds. Where the points share fewer than two
seeds it falls back to ``trend``: a weighted least-squares line of the per-point means, each weighted by the inverse
square of its standard error (taken back out of its own Student-t interval), t with the fewest seeds of any point less
one degree of freedom, widened by the scatter about the line where there are more than two points (the points taken
as independent, which is wider). Its words say whether the gap grows, shrinks or shows no trend; the line's value one
and two decades past the largest point, with its 95% interval, is stated as an extrapolation (it assumes the
difference stays linear in log compute, and a new measurement would scatter more than the line).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from monai_hybrid.benchmark.compute import step_flops
from monai_hybrid.benchmark.machine import NOT_RECORDED, machines_of, one_machine
from monai_hybrid.benchmark.presets import BenchmarkPreset
from monai_hybrid.benchmark.records import cohort_view, complete_sites, grid_records, pooled_runs, site_of
from monai_hybrid.benchmark.rows import METHODS, PRETRAININGS
from monai_hybrid.benchmark.stats import Comparison, compare, replicate_differences, t_interval
from monai_hybrid.options import RunKind

__all__ = [
    "COMPUTE_FIELDS",
    "METRICS",
    "Point",
    "Scaling",
    "Trend",
    "load_point",
    "measure_scaling",
    "paired_trend",
    "trend",
]


#: The preset fields that ``compute_point`` changes: points that differ in nothing else form one series.
COMPUTE_FIELDS = ("name", "pretrain_steps", "pretrain_epochs", "pretrain_val_interval", "oracle_steps")

#: metric key -> (name in the report, digits, higher is better, unit)
METRICS = {
    "mean_fg_dice": ("Dice", 3, True, ""),
    "mean_hd95": ("HD95", 1, False, " mm"),
    "fp_far_ml": ("far false positives", 1, False, " ml"),
}


@dataclass(frozen=True)
class Point:
    """One stored benchmark as a point of the compute axis.

    Attributes:
        name: the preset's name (``cpu_x4``).
        path: its ``results.json``.
        series: the settings every point of its series shares (its preset's ``run_settings`` but ``COMPUTE_FIELDS``)
            and its machine's label.
        flops: mean pretraining FLOPs of the reference row's runs (steps x counted FLOPs per step).
        steps: pretraining steps of the reference row.
        wall_min: the fastest and the mean wall time of the two rows' pretraining runs of ``steps`` that ran in one
            go, in minutes (``(nan, nan)`` where every one was resumed); the fastest is the machine's pace, the mean
            holds any pause or neighbour the runs met.
        machine: the machine its runs ran on (``machine.one_machine``).
        counted: ``records`` where the pretraining records hold their FLOPs, ``preset`` where they were counted here
            from the preset's network and batch (records made before the compute axis).
        fresh: its fine-tuning runs of the two rows on the fresh cohort, per site.
        sites: the target sites where both rows ran every budget.
    """

    name: str
    path: str
    series: str
    flops: float
    steps: int
    wall_min: tuple[float, float]
    machine: str
    counted: str
    fresh: list[dict]
    sites: tuple[str, ...]


def _preset_flops(preset: BenchmarkPreset, classes: int) -> int:
    """FLOPs of one pretraining step of ``preset``'s network and batch (the bundle's other network settings)."""
    from monai_hybrid.networks import HybridDiffusionUNet

    network = HybridDiffusionUNet(
        2,
        1,
        classes,
        channels=preset.channels,
        attention_levels=preset.attention_levels,
        num_head_channels=preset.num_head_channels,
        norm_num_groups=preset.norm_num_groups,
        use_flash_attention=True,
    )
    return step_flops(network, (preset.batch_volumes * preset.samples_per_volume, 1, *preset.roi))


def _series(preset: BenchmarkPreset, machine: str) -> str:
    """The key of a point's series: its preset's settings but the compute fields, and the ``machine`` it ran on."""
    settings = {k: v for k, v in dataclasses.asdict(preset).items() if k not in COMPUTE_FIELDS}
    kept = {k: v for k, v in settings.items() if k in preset.run_settings()}
    return json.dumps({"settings": kept, "machine": machine}, sort_keys=True, default=str)


def _labels(series: dict[str, list[Point]]) -> dict[str, str]:
    """Each series' name: its smallest point's preset, and its machine where two series share that name."""
    names = {key: members[0].name for key, members in series.items()}
    shared = {n for n in names.values() if list(names.values()).count(n) > 1}
    return {key: f"{name} on {json.loads(key)['machine']}" if name in shared else name for key, name in names.items()}


def load_point(path: str | os.PathLike, reference: str, baseline: str, budgets: list[str]) -> Point:
    """The point of the compute axis that the benchmark stored in ``path`` makes.

    Args:
        path: a benchmark's ``results.json``.
        reference, baseline: rows (keys of ``METHODS``); the reference's pretraining gives the point's FLOPs.
        budgets: the budgets compared.

    Raises:
        FileNotFoundError: no ``path``.
        ValueError: a row that is not pretrained, no pretraining or fine-tuning run of the rows, or runs of two
            machines.
    """
    pretraining = METHODS[reference].pretrain if reference in METHODS else None
    if pretraining is None:
        raise ValueError(f"scaling: '{reference}' is not a pretrained row; the compute axis is pretraining compute.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No results file '{path}'; pass the results.json of each compute point.")
    saved = json.loads(path.read_text())
    preset = BenchmarkPreset.from_json(saved["preset"])
    records = grid_records(saved["runs"])
    name = preset.pretrain_run_name(pretraining)
    pretrained = [r for r in records if r.get("kind") == RunKind.PRETRAIN and r.get("pretraining") == name]
    if not pretrained:
        raise ValueError(f"'{path}' has no pretraining run of {name} ({reference}'s); a compute point needs them.")
    trained = [r for r in records if r.get("kind") in (RunKind.PRETRAIN, RunKind.FINETUNE)]
    machine = one_machine(trained, f"'{path}'")
    on = next((m for m in machines_of(trained) if m != NOT_RECORDED), NOT_RECORDED)
    if all("train_flops" in r for r in pretrained):
        flops, counted = float(np.mean([r["train_flops"] for r in pretrained])), "records"
        steps = int(np.mean([r["steps"] for r in pretrained]))
    else:
        steps = preset.pretrain_steps * PRETRAININGS[pretraining].steps_factor
        flops, counted = float(_preset_flops(preset, len(saved["class_names"])) * steps), "preset"
    fresh = [
        r
        for r in cohort_view(records)
        if r.get("kind") == RunKind.FINETUNE and r.get("method") in (reference, baseline) and r.get("budget") in budgets
    ]
    sites = tuple(complete_sites(fresh, (reference, baseline), budgets))
    if not sites:
        raise ValueError(
            f"'{path}' has no target site where {reference} and {baseline} were fine-tuned at {budgets} and scored on "
            "the fresh cohort."
        )
    # both rows train the point's network for its steps: the fastest of their whole runs is the machine's pace
    timed = (
        {name} | {preset.pretrain_run_name(METHODS[baseline].pretrain)}
        if METHODS.get(baseline) and METHODS[baseline].pretrain
        else {name}
    )
    whole = [
        r["wall_s"]
        for r in records
        if r.get("kind") == RunKind.PRETRAIN
        and r.get("pretraining") in timed
        and r.get("steps", steps) == steps
        and not r.get("resumed", False)
    ]
    wall = (float(np.min(whole) / 60), float(np.mean(whole) / 60)) if whole else (math.nan, math.nan)
    return Point(preset.name, str(path), _series(preset, on), flops, steps, wall, machine, counted, fresh, sites)


@dataclass(frozen=True)
class Trend:
    """The line of the paired difference on log10 FLOPs (``paired_trend``, or ``trend`` where the points share too
    few pretraining seeds).

    Attributes:
        slope, slope_low, slope_high: change of the difference per decade of compute, with its 95% interval.
        word: ``grows`` (the difference moves in the reference's favour), ``shrinks`` (against it) or ``no trend``
            (the slope's interval holds 0), or ``too few points``.
        at: ``(decades past the largest point, line's value, low, high)`` at one and two decades.
        basis: how the interval was formed, in words.
    """

    slope: float
    slope_low: float
    slope_high: float
    word: str
    at: tuple[tuple[int, float, float, float], ...]
    basis: str = "points as independent"


def _word(low: float, high: float, higher_is_better: bool) -> str:
    favourable = low > 0 if higher_is_better else high < 0
    against = high < 0 if higher_is_better else low > 0
    return "grows" if favourable else "shrinks" if against else "no trend"


def paired_trend(
    log_flops: list[float], per_point: list[dict[int, float]], higher_is_better: bool = True
) -> Trend | None:
    """The trend with the pretraining seed as its unit: each seed's least-squares line of its own difference
    (``stats.replicate_differences``, one dict per point at ``log_flops``) on log10 FLOPs, then the mean line and
    Student's t over the seeds. The points of a series fine-tune every seed on the same labelled cases, so a seed's
    differences at two points move together; taking the points as independent (``trend``) would count that shared
    part twice. ``None`` where fewer than two seeds ran at every point or the points share one compute."""
    seeds = sorted(set.intersection(*(set(d) for d in per_point))) if per_point else []
    x = np.asarray(log_flops, dtype=np.float64)
    if len(seeds) < 2 or len(set(log_flops)) < 2:
        return None
    design = np.stack([np.ones_like(x), x], axis=1)
    lines = np.array([np.linalg.lstsq(design, [d[s] for d in per_point], rcond=None)[0] for s in seeds])
    slope, low, high = t_interval(list(lines[:, 1]))
    at = tuple((d, *t_interval(list(lines @ np.array([1.0, x.max() + d])))) for d in (1, 2))
    basis = f"paired by pretraining seed, {len(seeds)} seeds at every point"
    return Trend(slope, low, high, _word(low, high, higher_is_better), at, basis)


def trend(log_flops: list[float], comparisons: list[Comparison | None], higher_is_better: bool = True) -> Trend:
    """The trend of ``comparisons`` (one per point, at ``log_flops``; see the module docstring); points without an
    interval are left out."""
    points = [
        (x, c.mean, (c.high - c.low) / (2 * float(stats.t.ppf(0.975, c.units - 1))), c.units)
        for x, c in zip(log_flops, comparisons, strict=True)
        if c is not None and math.isfinite(c.low) and c.high > c.low and c.units > 1
    ]
    if len({p[0] for p in points}) < 2:
        return Trend(math.nan, math.nan, math.nan, "too few points", ())
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    w = 1 / np.array([p[2] for p in points]) ** 2
    design = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = cov @ design.T @ (w * y)
    if len(points) > 2:  # scatter about the line beyond what the points' own errors explain widens it
        chi2 = float(np.sum(w * (y - design @ beta) ** 2))
        cov = cov * max(1.0, chi2 / (len(points) - 2))
    t = float(stats.t.ppf(0.975, min(p[3] for p in points) - 1))
    slope, half = float(beta[1]), t * math.sqrt(cov[1, 1])
    word = _word(slope - half, slope + half, higher_is_better)
    at = []
    for decades in (1, 2):
        v = np.array([1.0, x.max() + decades])
        mean, sd = float(v @ beta), math.sqrt(float(v @ cov @ v))
        at.append((decades, mean, mean - t * sd, mean + t * sd))
    return Trend(slope, slope - half, slope + half, word, tuple(at))


def _sentence(series: str, budget: str, name: str, unit: str, digits: int, t: Trend, rows: tuple[str, str]) -> str:
    reference, baseline = rows
    where = f"At {budget}, {name} ({reference} minus {baseline}, series {series})"
    if t.word == "too few points":
        return f"{where}: fewer than two points with an interval; no trend."
    change = {
        "grows": f"the gap **grows** in {reference}'s favour",
        "shrinks": f"the gap **shrinks** against {reference}",
        "no trend": "**no trend** is measured",
    }[t.word]
    ahead = "; ".join(
        f"{d} decade{'s' if d > 1 else ''} on: {m:+.{digits}f}{unit} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
        for d, m, lo, hi in t.at
    )
    return (
        f"{where}: {change} (slope {t.slope:+.{digits}f}{unit} per decade of compute [{t.slope_low:+.{digits}f}, "
        f"{t.slope_high:+.{digits}f}], {t.basis}); extrapolated, assuming a line in log compute (the line's "
        f"interval; a new measurement would scatter more), {ahead}."
    )


@dataclass(frozen=True)
class Scaling:
    """The compute axis measured: the points, their series and every comparison and trend.

    Attributes:
        reference, baseline: the rows compared.
        budgets: the budgets compared.
        points: the points, fewest FLOPs first.
        series: series key -> its points (fewest FLOPs first).
        label: series key -> its name (its smallest point's preset).
        sites: series key -> the target sites its points share (each point pooled over them).
        pooled: a point's ``path`` -> its fresh-cohort runs pooled over its series' sites.
        found: ``(metric, path, budget)`` -> the paired difference at that point (``None``: not run).
        trends: ``(metric, series key, budget)`` -> the trend across the series' points.
        sentences: ``(metric, series key, budget)`` -> the generated sentence on it.
    """

    reference: str
    baseline: str
    budgets: tuple[str, ...]
    points: list[Point]
    series: dict[str, list[Point]]
    label: dict[str, str]
    sites: dict[str, list[str]]
    pooled: dict[str, list[dict]]
    found: dict[tuple[str, str, str], Comparison | None]
    trends: dict[tuple[str, str, str], Trend]
    sentences: dict[tuple[str, str, str], str]


def measure_scaling(
    results: list[str | os.PathLike],
    reference: str = "hybrid",
    baseline: str = "supervised_aug",
    budgets: tuple[str, ...] = ("1 slice", "4 slices", "1 scan"),
) -> Scaling:
    """The compute axis that the stored benchmarks ``results`` (each a point's ``results.json``) make.

    Raises:
        ValueError: fewer than two results, a series of one point, a series whose points share no site, or a point
            that ``load_point`` refuses.
    """
    if len(results) < 2:
        raise ValueError(f"scaling: a curve needs at least two compute points, got {len(results)}.")
    points = sorted((load_point(p, reference, baseline, list(budgets)) for p in results), key=lambda p: p.flops)
    series: dict[str, list[Point]] = {}
    for p in points:
        series.setdefault(p.series, []).append(p)
    label = _labels(series)
    sites: dict[str, list[str]] = {}
    pooled: dict[str, list[dict]] = {}
    for key, members in series.items():
        if len(members) < 2:
            raise ValueError(
                f"scaling: '{members[0].path}' ({members[0].name}) is the only point of its series (the points of a "
                "series differ only in pretraining length: --pretrain-steps-factor); add another point of it."
            )
        sites[key] = [s for s in members[0].sites if all(s in p.sites for p in members)]
        if not sites[key]:
            raise ValueError(f"scaling: the points of series {label[key]} share no target site; run one in all.")
        for p in members:
            fresh = [r for r in p.fresh if site_of(r) in sites[key]]
            pooled[p.path] = pooled_runs(fresh, sites[key]) if len(sites[key]) > 1 else fresh
    found, trends, sentences = {}, {}, {}
    for metric, (name, digits, higher, unit) in METRICS.items():
        for p in points:
            for b in budgets:
                found[(metric, p.path, b)] = compare(
                    pooled[p.path], reference, baseline, b, metric, higher_is_better=higher
                )
        for key, members in series.items():
            x = [math.log10(p.flops) for p in members]
            for b in budgets:
                per_seed = [replicate_differences(pooled[p.path], reference, baseline, b, metric) for p in members]
                t = paired_trend(x, per_seed, higher) or trend(x, [found[(metric, p.path, b)] for p in members], higher)
                trends[(metric, key, b)] = t
                sentences[(metric, key, b)] = _sentence(label[key], b, name, unit, digits, t, (reference, baseline))
    return Scaling(reference, baseline, tuple(budgets), points, series, label, sites, pooled, found, trends, sentences)
