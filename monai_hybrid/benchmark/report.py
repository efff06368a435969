"""Tables, intervals, verdicts and plots of a benchmark's results.

Every comparison is paired: the default recipe (the preset's ``reference`` row) minus another row, on the same target
site, budget and fine-tuning seed, hence on the same labelled cases. The unit of replication is the pretraining seed:
fine-tuning seed ``s`` starts from pretraining seed ``s % P`` (the record's ``replicate``), and the fine-tuning seeds
of one pretraining seed share its model, so they are not independent. The 95% interval of a mean paired difference is
Student's t on the ``P`` per-replicate means (``P - 1`` degrees of freedom: the interval of the grand mean of a
balanced nested design); with a single replicate it is t over the fine-tuning seeds, and with a single run there is
none. The verdict words follow from the interval alone: "ahead" or "behind" only where it excludes 0, otherwise
"level" (an interval that touches 0 is level).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "TUNING_REPORTS",
    "Comparison",
    "compare",
    "cohort_view",
    "comparison_sentences",
    "cost_table",
    "seeds_for_half_width",
    "width_table",
    "markdown_table",
    "pooled_runs",
    "verdict",
    "paired_table",
    "plot_dice",
    "plot_validation_curves",
    "summarise",
    "write_ablations_report",
    "write_grid_report",
    "write_results_report",
    "write_tuning_report",
]

_ORDER = [
    "hybrid",
    "hybrid_ftaug",
    "hybrid_aug",
    "hybrid_synth",
    "hybrid_target",
    "hybrid_semi",
    "supervised",
    "supervised_ftaug",
    "supervised_aug",
    "supervised_aug_ftaug",
    "supervised_synth",
    "synth",
    "synth_ftaug",
    "diffusion",
    "contrastive",
    "scratch",
    "scratch_long",
]


def _site(run: dict) -> str:
    return run.get("site", "target")  # records before 0.5 hold one target and no site


def summarise(
    runs: list[dict], metric: str = "mean_fg_dice", site: str | None = None
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``method -> budget -> (mean, std, n)`` of ``metric`` over seeds (fine-tuning runs and bounds), at target
    ``site`` (default: every run). ``std`` is ``nan`` for a single run."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if site is not None and _site(run) != site:
            continue
        if run.get("kind") in ("finetune", "bound") and metric in run:
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


def _control_of(method: str) -> str | None:
    """The row that ``method`` is the fine-tuning convergence control of (``hybrid_long`` -> ``hybrid``), or None.
    ``scratch_long`` is a row of its own (the long schedule from scratch), not a control."""
    if method.endswith("_long") and method != "scratch_long":
        return method.removesuffix("_long")
    return None


def _budget_order(name: str) -> tuple[int, int, str]:
    """Slices before scans, each by count (``"4 slices"`` before ``"16 slices"`` before ``"1 scan"``); a name of
    another form last, as it came."""
    k, _, unit = name.partition(" ")
    if not k.isdigit() or unit.rstrip("s") not in ("slice", "scan"):
        return (2, 0, "")
    return (0 if unit.startswith("slice") else 1, int(k), "")


def _methods(summary: dict) -> list[str]:
    known = [m for m in _ORDER if m in summary]
    return known + sorted(m for m in summary if m not in known)


def _cell(value: tuple[float, float, int], digits: int = 3) -> str:
    """``mean +- std (n)``; a single run shows ``n = 1`` and no spread."""
    mean, std, n = value
    if n == 1:
        return f"{mean:.{digits}f} (n = 1)"
    return f"{mean:.{digits}f} +- {std:.{digits}f} ({n})"


def markdown_table(
    runs: list[dict], budgets: list[str], metric: str = "mean_fg_dice", digits: int = 3, site: str | None = None
) -> str:
    """A markdown table: methods as rows, budgets as columns, ``mean +- std (n)`` over seeds (at ``site``).

    The bounds (oracle: all target labels; zero-shot: none) fill a last column of their own.
    """
    summary = summarise(runs, metric, site)
    grid = [m for m in _methods(summary) if any(b in summary[m] for b in budgets)]
    bounds = [m for m in _methods(summary) if m not in grid]

    def cell(value: tuple[float, float, int]) -> str:
        return _cell(value, digits)

    columns = budgets + (["bound"] if bounds else [])
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for method in grid:
        cells = [cell(summary[method][b]) if b in summary[method] else "" for b in budgets]
        lines.append(f"| {method} | " + " | ".join(cells + [""] * bool(bounds)) + " |")
    for method in bounds:
        for budget, value in summary[method].items():
            labels = "no target labels" if budget in ("0", "none") else budget
            lines.append(f"| {method}, {labels} | " + " | ".join([""] * len(budgets) + [cell(value)]) + " |")
    return "\n".join(lines)


def _paired(
    runs: list[dict], reference: str, other: str, budget: str, metric: str, site: str | None
) -> list[tuple[int, float]]:
    """``(replicate, reference - other)`` of ``metric`` for each (site, fine-tuning seed) both rows ran."""
    by_case: dict[str, dict[tuple[str, int], dict]] = {reference: {}, other: {}}
    for run in runs:
        if run.get("kind") != "finetune" or run.get("budget") != budget or run.get("method") not in by_case:
            continue
        if (site is None or _site(run) == site) and metric in run:
            by_case[run["method"]][(_site(run), run["seed"])] = run
    both = sorted(set(by_case[reference]) & set(by_case[other]))
    out = []
    for case in both:
        ref, oth = by_case[reference][case], by_case[other][case]
        out.append((int(ref.get("replicate", case[1])), float(ref[metric]) - float(oth[metric])))
    return [(r, d) for r, d in out if math.isfinite(d)]


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
    groups: dict[int, list[float]] = defaultdict(list)
    for replicate, d in pairs:
        groups[replicate].append(d)
    units = [float(np.mean(v)) for v in groups.values()] if len(groups) > 1 else [d for _, d in pairs]
    mean, low, high = t_interval(units)
    diffs = np.asarray([d for _, d in pairs])
    wins = int((diffs > 0).sum() if higher_is_better else (diffs < 0).sum())
    return Comparison(mean, low, high, wins, len(pairs), len(units), verdict(low, high, higher_is_better))


def _interval_cell(c: Comparison | None, digits: int = 3, unit: str = "") -> str:
    if c is None:
        return ""
    if not math.isfinite(c.low):
        return f"{c.mean:+.{digits}f}{unit} (n = {c.n}, no interval) {c.word}"
    return f"{c.mean:+.{digits}f}{unit} [{c.low:+.{digits}f}, {c.high:+.{digits}f}] ({c.wins}/{c.n}) {c.word}"


def paired_table(
    runs: list[dict],
    reference: str,
    others: list[str],
    budgets: list[str],
    metric: str = "mean_fg_dice",
    site: str | None = None,
    higher_is_better: bool = True,
    digits: int = 3,
) -> str:
    """A markdown table of ``reference`` minus each of ``others``, paired by site and seed: the mean difference, its
    95% interval, the wins (runs where ``reference`` is better) over the pairs, and the verdict word."""
    lines = [f"| {reference} minus | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
    for other in others:
        cells = [
            _interval_cell(compare(runs, reference, other, b, metric, site, higher_is_better), digits) for b in budgets
        ]
        if any(cells):
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


def width_table(
    runs: list[dict], reference: str, others: list[str], budgets: list[str], site: str | None, target: float = 0.03
) -> str:
    """A markdown table of the half-widths of the 95% intervals of ``reference`` minus each row (mean foreground
    Dice) and the independent units (pretraining seeds) their measured spread would need for ``+-target``."""
    lines = [f"| {reference} minus | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
    for other in others:
        cells = []
        for budget in budgets:
            c = compare(runs, reference, other, budget, site=site)
            needed = seeds_for_half_width(c, target) if c is not None else None
            cells.append(f"+-{(c.high - c.low) / 2:.3f} ({c.units} units; {needed} for +-{target})" if needed else "")
        if any(cells):
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_sentences(
    runs: list[dict], reference: str, others: list[str], budgets: list[str], site: str | None, where: str
) -> list[str]:
    """One generated sentence per other row and budget: the verdicts on mean foreground Dice and on HD95 with their
    intervals. ``where`` names the site (or "pooled over the sites") in the sentence."""
    lines = []
    for other in others:
        for budget in budgets:
            dice = compare(runs, reference, other, budget, "mean_fg_dice", site)
            if dice is None:
                continue
            hd = compare(runs, reference, other, budget, "mean_hd95", site, higher_is_better=False)
            text = (
                f"At {budget} ({where}), {reference} is **{dice.word}** of {other} on Dice "
                f"({_interval_cell(dice).rsplit(' ', 1)[0]})"
            )
            if hd is not None:
                text += f" and **{hd.word}** of it on HD95 ({_interval_cell(hd, 2, ' mm').rsplit(' ', 1)[0]})"
            lines.append(text.replace("**behind** of", "**behind**").replace("**level** of", "**level** with") + ".")
    return lines


def pooled_runs(runs: list[dict], sites: list[str]) -> list[dict]:
    """Records pooled over ``sites``: for each row, budget and seed that ran at every one of them, the mean of each
    metric over the sites (site ``pooled``); bounds are pooled alike per pretraining seed."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        if run.get("kind") in ("finetune", "bound") and _site(run) in sites:
            groups[(run["kind"], run["method"], run["budget"], run["seed"])].append(run)
    pooled = []
    for (kind, method, budget, seed), members in groups.items():
        if sorted(_site(r) for r in members) != sorted(sites):
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
        if run.get("kind") in ("finetune", "bound") and isinstance(run.get(cohort), dict):
            base = {k: v for k, v in run.items() if not isinstance(v, float) or k in ("train_s", "wall_s")}
            out.append({**base, **run[cohort]})
    return out


def cost_table(runs: list[dict], rows: list[str], reference: str) -> str:
    """Wall time of each row: its pretraining runs (mean minutes over seeds, and the ratio to the reference row's)
    and its fine-tuning runs (mean seconds, evaluation excluded)."""
    pretrain: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run.get("kind") == "pretrain" and "wall_s" in run:
            pretrain[run.get("pretraining") or run["method"].rsplit("_seed", 1)[0]].append(run["wall_s"])
    finetune: dict[str, list[float]] = defaultdict(list)
    uses: dict[str, str] = {}
    for run in runs:
        if run.get("kind") == "finetune" and run["method"] in rows:
            finetune[run["method"]].append(run.get("train_s", math.nan))
            if run.get("pretrained"):
                uses[run["method"]] = Path(run["pretrained"]).parts[-4].rsplit("_seed", 1)[0]
    ref = np.mean(pretrain[uses[reference]]) if reference in uses and pretrain.get(uses[reference]) else math.nan
    lines = [
        "| row | pretraining (min, mean over seeds) | ratio to " + reference + " | fine-tuning run (s, mean) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        p = pretrain.get(uses.get(row, ""), [])
        minutes = f"{np.mean(p) / 60:.1f} ({len(p)})" if p else "none"
        ratio = f"{np.mean(p) / ref:.2f}" if p and math.isfinite(ref) else ""
        ft = f"{np.nanmean(finetune[row]):.0f} ({len(finetune[row])})" if finetune.get(row) else ""
        lines.append(f"| {row} | {minutes} | {ratio} | {ft} |")
    return "\n".join(lines)


def plot_dice(
    runs: list[dict], budgets: list[str], path: str | os.PathLike, title: str = "", metric: str = "mean_fg_dice"
) -> None:
    """Mean foreground Dice (or ``metric``) against the label budget, one line per method (mean and std over
    seeds)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary = summarise(runs, metric)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    x = np.arange(len(budgets))
    for method in _methods(summary):
        if _control_of(method):  # the convergence control: in its own table
            continue
        if not any(b in summary[method] for b in budgets):
            mean = next(iter(summary[method].values()))[0]
            ax.axhline(mean, linestyle=":", linewidth=1, label=method, color="grey" if "zero" in method else "black")
            continue
        means = [summary[method].get(b, (math.nan, 0, 0))[0] for b in budgets]
        stds = [summary[method].get(b, (math.nan, 0, 0))[1] for b in budgets]
        ax.errorbar(
            x, means, yerr=stds, marker="o", capsize=3, label=method, linewidth=2.5 if method == "hybrid" else 1.2
        )
    ax.set_xticks(x, budgets)
    ax.set_xlabel("labelled target data")
    ax.set_ylabel("mean foreground Dice (test)" if metric == "mean_fg_dice" else f"{metric} (test)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(str(Path(path)), dpi=110)
    plt.close(fig)


def _rows(runs: list[dict], budgets: list[str]) -> list[str]:
    methods = _methods(summarise(runs))
    return [m for m in methods if any(r.get("method") == m and r.get("budget") in budgets for r in runs)]


def grid_records(runs: list[dict]) -> list[dict]:
    """The grid's own records of a benchmark folder: without the tuning and ablation runs that share it (scored on
    validation subjects, they must not pair with the grid's test scores)."""
    others = ("tune/", "ablation/", "pretrain/tune_", "pretrain/ablation_")
    return [r for r in runs if not r.get("key", "").startswith(others) and r.get("eval_list", "test") == "test"]


def _cohort_section(
    runs: list[dict], budgets: list[str], reference: str, sites: list[str], what: str, pooled_sites: list[str]
) -> tuple[str, dict]:
    """The tables and generated sentences of one cohort, per site and pooled; returns the text and the verdicts
    ``(where, other, budget, metric) -> word`` for the cross-cohort check."""
    words: dict = {}
    parts = []
    views = [(site, site, runs) for site in sites]
    if len(pooled_sites) > 1:
        pooled = pooled_runs(runs, pooled_sites)
        if pooled:
            views.append(("pooled over " + ", ".join(pooled_sites), "pooled", pooled))
    for where, site, view in views:
        rows = [m for m in _rows(view, budgets) if _control_of(m) is None]
        others = [m for m in rows if m != reference]
        present = [b for b in budgets if any(r.get("budget") == b and _site(r) == site for r in view)]
        if not present:
            continue
        sentences = comparison_sentences(view, reference, others, present, site, where)
        far = (
            "Predicted foreground more than 10 mm from the reference brain (ml, mean over test subjects):\n\n"
            f"{markdown_table(view, present, 'fp_far_ml', 2, site)}\n\n"
            f"Paired, {reference} minus each row (ml; lower is better):\n\n"
            f"{paired_table(view, reference, others, present, 'fp_far_ml', site, False, 1)}\n\n"
            if any("fp_far_ml" in r for r in view)
            else ""  # records before 0.5 lack it
        )
        for other in others:
            for b in present:
                for metric, better in (("mean_fg_dice", True), ("mean_hd95", False)):
                    c = compare(view, reference, other, b, metric, site, better)
                    if c is not None:
                        words[(site, other, b, metric)] = c.word
        parts.append(
            f"### {where}: {what}\n\nMean foreground Dice (mean +- std over seeds, n):\n\n"
            f"{markdown_table(view, present, site=site)}\n\n"
            f"Paired differences, {reference} minus each row (mean [95% interval] (wins/n) verdict), Dice:\n\n"
            f"{paired_table(view, reference, others, present, site=site)}\n\n"
            f"HD95 (mm; lower is better, so a negative difference favours {reference}):\n\n"
            f"{paired_table(view, reference, others, present, 'mean_hd95', site, False, 2)}\n\n"
            + far
            + "Half-widths of the Dice intervals, and the pretraining seeds the measured spread would need for +-0.03:"
            + f"\n\n{width_table(view, reference, others, present, site)}\n\n"
            + "Generated verdicts:\n\n"
            + "\n".join(f"- {line}" for line in sentences)
            + "\n"
        )
    return "\n".join(parts), words


def write_grid_report(
    runs: list[dict],
    budgets: list[str],
    class_names: list[str],
    out_dir: str | os.PathLike,
    title: str,
    reference: str = "hybrid",
    fresh_seed: int | None = None,
    pooled_sites: list[str] | None = None,
) -> str:
    """Write ``results.md`` and one ``dice_vs_budget_<site>.png`` per target site (plus ``pretraining_curves.png``).

    ``results.md`` holds, for the fresh test cohort (when the runs carry one) and for the development test cohort,
    per target site and pooled over the sites: mean foreground Dice, the paired differences of ``reference`` against
    every other row in Dice and in HD95 with 95% intervals, wins and verdicts, the far false-positive volume and the
    generated verdict sentences; then the sentences where the two cohorts disagree, Dice per class, HD95, classes
    missed, the fine-tuning convergence control and the wall time of each row.

    Tuning and ablation records in the same folder are left out (``grid_records``). ``pooled_sites`` (the main
    part's target sites) are pooled: each row, budget and seed that ran at every one of them, averaged over them.

    Returns:
        The main table: mean foreground Dice of the first target site on the development test cohort.
    """
    runs = grid_records(runs)
    pooled_sites = list(pooled_sites or [])
    out = Path(out_dir)
    sites = list(dict.fromkeys(_site(r) for r in runs if r.get("kind") in ("finetune", "bound")))
    fresh = cohort_view(runs)
    sections = []
    fresh_words: dict = {}
    if fresh:
        text, fresh_words = _cohort_section(
            fresh, budgets, reference, sites, f"fresh test cohort (phantom seed {fresh_seed})", pooled_sites
        )
        sections.append(f"## Fresh test cohort (phantom seed {fresh_seed}, never used in development)\n\n{text}")
    text, test_words = _cohort_section(runs, budgets, reference, sites, "development test cohort", pooled_sites)
    sections.append(
        f"## Development test cohort (the phantom's test subjects, seen through the design rounds)\n\n{text}"
    )
    if fresh:
        disagree = [
            f"- {site}, {budget}, {reference} vs {other}, {metric}: fresh cohort **{word}**, development cohort "
            f"**{test_words[(site, other, budget, metric)]}**."
            for (site, other, budget, metric), word in fresh_words.items()
            if (site, other, budget, metric) in test_words and test_words[(site, other, budget, metric)] != word
        ]
        sections.append(
            "## Where the two cohorts disagree\n\n"
            + ("\n".join(disagree) if disagree else "Nowhere: every verdict is the same on both cohorts.")
        )
    rows = _rows(runs, budgets)
    long_rows = [m for m in rows if _control_of(m) in rows]
    main_rows = [m for m in rows if m not in long_rows]
    details = []
    for site in sites:
        present = [b for b in budgets if any(r.get("budget") == b and _site(r) == site for r in runs)]
        per_class = "\n\n".join(
            f"{name}:\n\n" + markdown_table(runs, present, metric=f"dice_{name}", site=site) for name in class_names[1:]
        )
        details.append(
            f"### {site}\n\nDice per class:\n\n{per_class}\n\nMean HD95 (mm; a missed class scores the volume's "
            f"diagonal):\n\n{markdown_table(runs, present, 'mean_hd95', 2, site)}\n\nClasses missed per case "
            "(empty in the prediction or in the reference, not both):\n\n"
            f"{markdown_table(runs, present, 'n_missed', 2, site)}\n"
        )
        plot_dice(
            [r for r in runs if _site(r) == site], present, out / f"dice_vs_budget_{site}.png", f"{title}: {site}"
        )
    control = "\n\n".join(
        paired_table(
            runs,
            m,
            [_control_of(m)],
            [b for b in budgets if any(r.get("method") == m and r.get("budget") == b for r in runs)],
        )
        for m in long_rows
    )
    per_replicate = defaultdict(set)
    for r in runs:
        if r.get("kind") == "finetune" and r.get("method") == reference and "replicate" in r:
            per_replicate[r["replicate"]].add(r["seed"])
    counts = sorted({len(v) for v in per_replicate.values()})
    balance = (
        f"The {reference} runs hold {' or '.join(map(str, counts))} fine-tuning seeds per pretraining seed: the mean "
        "difference is the mean of the per-pretraining-seed means, each pretraining seed weighted alike.\n\n"
        if len(counts) > 1
        else ""
    )
    (out / "results.md").write_text(
        f"# Benchmark: {title}\n\n"
        f"Default recipe (the reference of every comparison): **{reference}**. Intervals: 95%, Student's t on the "
        "per-pretraining-seed means of the paired differences (fine-tuning seed s starts from pretraining seed s % P, "
        "P the pretraining seeds of its grid part; "
        "with one pretraining seed, t over the fine-tuning seeds). Verdicts: ahead / behind only where the interval "
        "excludes 0, otherwise level.\n\n"
        + balance
        + "\n\n".join(sections)
        + "\n\n## Details (development test cohort)\n\n"
        + "\n".join(details)
        + "\n## Fine-tuning convergence control (the same rows fine-tuned longer, minus the standard schedule)\n\n"
        + f"{control or 'none run'}\n\n## Wall time of each row\n\n{cost_table(runs, main_rows, reference)}\n"
    )
    plot_validation_curves(runs, out / "pretraining_curves.png", title=title)
    return markdown_table(runs, budgets, site=sites[0]) if sites else ""


def write_ablations_report(runs: list[dict], variants: list[str], out_dir: str | os.PathLike) -> str:
    """Write ``ablations.md`` to ``out_dir``: target validation Dice per variant, and the source validation after
    each variant's pretraining.

    Returns:
        The table of target validation Dice.
    """
    rows = [r for r in runs if r["kind"] == "finetune" and r["key"].startswith("ablation/")]
    table = markdown_table(rows, ["1 scan"])
    source = "\n".join(
        f"| {r['method']} | {r['source_val'].get('val_mean_dice', float('nan')):.3f} | "
        f"{r['source_val'].get('val_denoise_mse', float('nan')):.4f} |"
        for r in runs
        if r["kind"] == "pretrain" and r["method"].startswith("ablation_")
    )
    (Path(out_dir) / "ablations.md").write_text(
        "# Ablations of the hybrid defaults\n\nTarget *validation* subjects, mean foreground Dice after "
        f"fine-tuning on 1 labelled scan (mean +- std over seeds, n); variants: {variants}\n\n{table}\n\n"
        "Source validation after pretraining:\n\n| pretraining | val Dice | val denoising MSE |\n|---|---|---|\n"
        f"{source}\n"
    )
    return table


def plot_validation_curves(runs: list[dict], path: str | os.PathLike, title: str = "") -> bool:
    """Source validation Dice against pretraining steps, one line per pretraining run (``source_val_curve``).

    Returns:
        Whether there was a curve to plot.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curves = [r for r in runs if r.get("kind") == "pretrain" and r.get("source_val_curve")]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours: dict[str, Any] = {}
    for run in curves:
        name = run.get("pretraining") or run["method"].rsplit("_seed", 1)[0]  # records before 0.4 lack the field
        steps = [h["epoch"] * run["steps_per_epoch"] for h in run["source_val_curve"]]
        dice = [h.get("val_mean_dice", math.nan) for h in run["source_val_curve"]]
        (line,) = ax.plot(steps, dice, marker="o", color=colours.get(name), label=None if name in colours else name)
        colours.setdefault(name, line.get_color())
    ax.set_xlabel("pretraining steps")
    ax.set_ylabel("mean foreground Dice (source validation, t = 0)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(Path(path)), dpi=110)
    plt.close(fig)
    return True


def write_results_report(
    results: str | os.PathLike, out_dir: str | os.PathLike, title: str | None = None, reference: str | None = None
) -> str:
    """Write the grid report of a stored ``results.json`` (a benchmark's, or a copy in docs/results/) to
    ``out_dir``: budgets in the order of the preset's parts, the preset's reference row (or ``reference``, another
    row of the grid, every other row compared with it) and fresh-cohort seed; when it holds the tuning runs
    (``benchmark --tune``), their ``tuning.md`` beside it; when it holds runs at a lesion site, their report
    (``results_lesions.md``, ``monai_hybrid.benchmark.lesion_report``) beside it, and the grid report without them.

    Records written before the replicate was stored get it from their seed (``seed % P``, P pretraining seeds), as
    the plan assigned it.

    Returns:
        The main table (see ``write_grid_report``).

    Raises:
        FileNotFoundError: ``results`` does not exist.
        ValueError: ``reference`` is not a row fine-tuned in ``results``.
    """
    import json

    from monai_hybrid.benchmark.presets import BenchmarkPreset

    path = Path(results)
    if not path.is_file():
        raise FileNotFoundError(f"No results file '{path}'; pass a benchmark's results.json.")
    saved = json.loads(path.read_text())
    preset = BenchmarkPreset.from_json(saved["preset"])
    runs = [
        {**run, "replicate": run["seed"] % len(preset.pretrain_seeds)}
        if run.get("kind") == "finetune" and "replicate" not in run
        else run
        for run in saved["runs"]
    ]
    budgets = list(dict.fromkeys(b.name for part in preset.grid_parts for b in part.budgets))
    budgets += [
        b
        for b in dict.fromkeys(r.get("budget") for r in runs if r.get("kind") == "finetune")
        if b not in budgets and b != "all scans"
    ]
    budgets.sort(key=_budget_order)
    if reference is not None and not any(r.get("kind") == "finetune" and r.get("method") == reference for r in runs):
        rows = sorted({r["method"] for r in runs if r.get("kind") == "finetune" and "method" in r})
        raise ValueError(f"reference '{reference}' is no fine-tuned row of '{path}'; rows: {rows}.")
    title = title or f"preset {preset.name}, {len(preset.pretrain_seeds)} pretraining seeds"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pooled = [s for s in preset.target_sites if any(r.get("site") == s for r in runs)]
    for kind, (prefix, *_) in TUNING_REPORTS.items():
        if any(r.get("kind") == "finetune" and r["key"].startswith(prefix) for r in runs):
            write_tuning_report(runs, out, kind)
    from monai_hybrid.benchmark.data import is_lesion_site
    from monai_hybrid.benchmark.lesion_report import write_lesion_report

    common = {"reference": reference or preset.reference, "fresh_seed": saved.get("fresh_seed")}
    write_lesion_report(grid_records(runs), budgets, saved["class_names"], out, title, **common)
    clean = [r for r in runs if not is_lesion_site(_site(r))]
    return write_grid_report(clean, budgets, saved["class_names"], out, title, pooled_sites=pooled, **common)


#: The variant of each tuning (``kind``) that the others are paired with: the grid's own fine-tuning.
_TUNING_BASELINE = {"finetuning": "all"}

#: Each tuning (``kind``): its runs' key prefix, its report's file, and its title and protocol.
TUNING_REPORTS = {
    "pretraining": (
        "tune/",
        "tuning.md",
        "every row's pretraining variants",
        "Each row gets the same variants (plan.TUNING), pretrained with the first pretraining seed",
    ),
    "finetuning": (
        "tune_ft/",
        "tuning_finetuning.md",
        "every row's fine-tuning variants",
        "Each row gets the same fine-tuning variants (plan.FINETUNE_TUNING), from its grid pretraining of the first "
        "pretraining seed",
    ),
}


def write_tuning_report(
    runs: list[dict], out_dir: str | os.PathLike, kind: str = "pretraining"
) -> tuple[str, dict[str, str]]:
    """Write ``tuning.md`` (``kind`` pretraining: ``plan_tuning``'s runs) or ``tuning_finetuning.md`` (``kind``
    finetuning: ``plan_finetune_tuning``'s): each row's variants on the validation subjects of each target site and
    pooled over the sites, and the variant each row chooses (the highest pooled mean foreground Dice, averaged over
    the budgets).

    Returns:
        The pooled table and row -> chosen variant.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in TUNING_REPORTS:
        raise ValueError(f"write_tuning_report: 'kind' must be one of {list(TUNING_REPORTS)}, got {kind!r}.")
    prefix, file_name, what, protocol = TUNING_REPORTS[kind]
    tuned = [r for r in runs if r.get("kind") == "finetune" and r["key"].startswith(prefix)]
    budgets = list(dict.fromkeys(r["budget"] for r in tuned))
    sites = list(dict.fromkeys(_site(r) for r in tuned))
    pooled = pooled_runs(tuned, sites)
    summary = summarise(pooled)
    # one score per variant: its pooled mean over the budgets every variant of the row has
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for method in summary:
        row, variant = method.split(" | ", 1)
        scores[row][variant] = math.nan
    for row, variants in scores.items():
        common = [b for b in budgets if all(b in summary[f"{row} | {v}"] for v in variants)]
        for v in variants:
            scores[row][v] = float(np.mean([summary[f"{row} | {v}"][b][0] for b in common])) if common else math.nan
    chosen = {
        row: max(v, key=lambda name, v=v: -math.inf if math.isnan(v[name]) else v[name]) for row, v in scores.items()
    }

    # "row | variant" would split a markdown cell: the tables name it "row (variant)"
    def shown(runs: list[dict]) -> list[dict]:
        return [{**r, "method": "{} ({})".format(*r["method"].split(" | ", 1))} for r in runs]

    table = markdown_table(shown(pooled), budgets)
    per_site = "\n\n".join(f"{site}:\n\n{markdown_table(shown(tuned), budgets, site=site)}" for site in sites)
    lines = "\n".join(f"- {row}: **{variant}**" for row, variant in chosen.items())
    baseline = _TUNING_BASELINE.get(kind)
    pairs = ""
    if baseline and any(baseline in variants for variants in scores.values()):
        rows = [f"| variant minus {baseline} | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
        for row, variants in scores.items():
            for variant in (v for v in variants if baseline in variants and v != baseline):
                cells = [
                    _interval_cell(compare(tuned, f"{row} | {variant}", f"{row} | {baseline}", b)) for b in budgets
                ]
                rows.append(f"| {row} ({variant}) | " + " | ".join(cells) + " |")
        pairs = (
            f"\n\nEach variant minus the row's {baseline}, paired by site and fine-tuning seed (the same labelled "
            "cases; 95% t interval over the pairs, which share one pretraining: it holds the fine-tuning seeds' "
            "spread, not the pretraining's), wins over pairs, verdict:\n\n" + "\n".join(rows)
        )
    (Path(out_dir) / file_name).write_text(
        f"# Equal care: {what} on the validation subjects\n\n"
        f"{protocol}, fine-tuned on "
        "the same labelled cases and scored on the *validation* subjects of every target site (the test subjects "
        f"choose nothing). Mean foreground Dice pooled over {', '.join(sites)} (mean +- std over seeds, n):\n\n"
        f"{table}\n\nChosen (highest pooled mean over the budgets):\n\n{lines}{pairs}\n\nPer site:\n\n{per_site}\n"
    )
    return table, chosen
