"""The statistics of a benchmark's results: means over seeds, paired differences, their 95% intervals and the verdict
words that follow from them.

Every comparison is paired: the default recipe (the preset's ``reference`` row) minus another row, on the same target
site, budget and fine-tuning seed, hence on the same labelled cases. The unit of replication is the pretraining seed:
fine-tuning seed ``s`` starts from pretraining seed ``s % P`` (the record's ``replicate``), and the fine-tuning seeds
of one pretraining seed share its model, so they are not independent. The 95% interval of a mean paired difference is
Student's t on the ``P`` per-replicate means (``P - 1`` degrees of freedom, each pretraining seed weighted alike); with
a single replicate it is t over the fine-tuning seeds, and with a single run there is none. The verdict words follow
from the interval alone: "ahead" or "behind" only where it excludes 0, otherwise "level" (an interval that touches 0
is level).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import stats

from monai_hybrid.benchmark.records import site_of
from monai_hybrid.options import RunKind

__all__ = [
    "Comparison",
    "compare",
    "paired_differences",
    "replicate_differences",
    "seeds_for_half_width",
    "summarise",
    "t_interval",
    "verdict",
]


def summarise(
    runs: list[dict], metric: str = "mean_fg_dice", site: str | None = None
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``method -> budget -> (mean, std, n)`` of ``metric`` over seeds (fine-tuning runs and bounds), at target
    ``site`` (default: every run). ``std`` is ``nan`` for a single run."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if site is not None and site_of(run) != site:
            continue
        if run.get("kind") in (RunKind.FINETUNE, RunKind.BOUND) and metric in run:
            values[run["method"]][run["budget"]].append(float(run[metric]))
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for method, budgets in values.items():
        out[method] = {}
        for budget, v in budgets.items():
            arr = np.asarray([x for x in v if x == x], dtype=np.float64)
            out[method][budget] = (
                float(arr.mean()) if arr.size else math.nan,
                float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
                int(arr.size),
            )
    return out


def _paired(
    runs: list[dict], reference: str, other: str, budget: str, metric: str, site: str | None
) -> list[tuple[int, float]]:
    """``(replicate, reference - other)`` of ``metric`` for each (site, fine-tuning seed) both rows ran."""
    by_case: dict[str, dict[tuple[str, int], dict]] = {reference: {}, other: {}}
    for run in runs:
        if run.get("kind") != RunKind.FINETUNE or run.get("budget") != budget or run.get("method") not in by_case:
            continue
        if (site is None or site_of(run) == site) and metric in run:
            by_case[run["method"]][(site_of(run), run["seed"])] = run
    both = sorted(set(by_case[reference]) & set(by_case[other]))
    out = []
    for case in both:
        ref, oth = by_case[reference][case], by_case[other][case]
        out.append((int(ref.get("replicate", case[1])), float(ref[metric]) - float(oth[metric])))
    return [(r, d) for r, d in out if math.isfinite(d)]


def _by_replicate(pairs: list[tuple[int, float]]) -> dict[int, float]:
    """Each pretraining replicate's mean of its paired differences."""
    groups: dict[int, list[float]] = defaultdict(list)
    for replicate, d in pairs:
        groups[replicate].append(d)
    return {r: float(np.mean(v)) for r, v in sorted(groups.items())}


def replicate_differences(
    runs: list[dict], reference: str, other: str, budget: str, metric: str = "mean_fg_dice", site: str | None = None
) -> dict[int, float]:
    """``reference`` minus ``other`` per pretraining replicate (the mean over its fine-tuning seeds and sites): the
    units of ``compare``'s interval, keyed so that two benchmarks with the same labelled cases pair seed by seed."""
    return _by_replicate(_paired(runs, reference, other, budget, metric, site))


def paired_differences(
    runs: list[dict], reference: str, other: str, budget: str, metric: str = "mean_fg_dice", site: str | None = None
) -> list[float]:
    """``reference`` minus ``other`` on ``metric``, seed by seed (the same labelled cases) at ``budget`` (and
    ``site``; default: every site)."""
    return [d for _, d in _paired(runs, reference, other, budget, metric, site)]


@dataclass(frozen=True)
class Comparison:
    """A paired difference (reference minus other) with its 95% interval.

    Attributes:
        mean: mean of the per-replicate means (the mean over runs when the replicates are balanced).
        low, high: the 95% interval (``nan`` with a single run).
        wins: runs where the difference favours the reference (higher, or lower where lower is better).
        n: paired runs.
        units: the independent units behind the interval (pretraining seeds, or fine-tuning seeds when there is
            one pretraining seed).
        word: the verdict: "ahead", "behind" or "level".
    """

    mean: float
    low: float
    high: float
    wins: int
    n: int
    units: int
    word: str


def verdict(low: float, high: float, higher_is_better: bool = True) -> str:
    """ "ahead" where the 95% interval ``[low, high]`` of reference minus other lies strictly on the reference's
    better side of 0, "behind" where it lies strictly on the other side, otherwise "level" (touching 0, or no
    interval)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "level"
    if low > 0:
        return "ahead" if higher_is_better else "behind"
    if high < 0:
        return "behind" if higher_is_better else "ahead"
    return "level"


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% Student's t interval of ``values`` (``nan`` bounds for fewer than two)."""
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean()) if arr.size else math.nan
    if arr.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))
    return mean, mean - half, mean + half


def compare(
    runs: list[dict],
    reference: str,
    other: str,
    budget: str,
    metric: str = "mean_fg_dice",
    site: str | None = None,
    higher_is_better: bool = True,
) -> Comparison | None:
    """``reference`` minus ``other`` at ``budget`` (and ``site``), paired by site and seed, with the 95% interval on
    the per-replicate means (see the module docstring); ``None`` if no pair."""
    pairs = _paired(runs, reference, other, budget, metric, site)
    if not pairs:
        return None
    groups = _by_replicate(pairs)
    units = list(groups.values()) if len(groups) > 1 else [d for _, d in pairs]
    mean, low, high = t_interval(units)
    diffs = np.asarray([d for _, d in pairs])
    wins = int((diffs > 0).sum() if higher_is_better else (diffs < 0).sum())
    return Comparison(mean, low, high, wins, len(pairs), len(units), verdict(low, high, higher_is_better))


def seeds_for_half_width(c: Comparison, target: float) -> int | None:
    """The number of independent units (pretraining seeds) at which the 95% t interval of ``c`` would be at most
    ``+-target`` wide, if their spread stayed the one measured; ``None`` without an interval."""
    if not math.isfinite(c.low) or c.units < 2:
        return None
    sd = (c.high - c.low) / 2 * math.sqrt(c.units) / float(stats.t.ppf(0.975, c.units - 1))
    n = 2
    while float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n) > target and n < 10_000:
        n += 1
    return n
