"""The markdown tables and generated sentences of a benchmark report (numbers from ``benchmark.stats``)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from monai_hybrid.benchmark.records import ordered_rows
from monai_hybrid.benchmark.stats import Comparison, compare, seeds_for_half_width, summarise
from monai_hybrid.options import RunKind

__all__ = ["comparison_sentences", "cost_table", "interval_cell", "markdown_table", "paired_table", "width_table"]


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
    grid = [m for m in ordered_rows(summary) if any(b in summary[m] for b in budgets)]
    bounds = [m for m in ordered_rows(summary) if m not in grid]

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


def interval_cell(c: Comparison | None, digits: int = 3, unit: str = "") -> str:
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
            interval_cell(compare(runs, reference, other, b, metric, site, higher_is_better), digits) for b in budgets
        ]
        if any(cells):
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
                f"({interval_cell(dice).rsplit(' ', 1)[0]})"
            )
            if hd is not None:
                text += f" and **{hd.word}** of it on HD95 ({interval_cell(hd, 2, ' mm').rsplit(' ', 1)[0]})"
            lines.append(text.replace("**behind** of", "**behind**").replace("**level** of", "**level** with") + ".")
    return lines


def cost_table(runs: list[dict], rows: list[str], reference: str) -> str:
    """Wall time of each row: its pretraining runs (mean minutes over seeds, and the ratio to the reference row's)
    and its fine-tuning runs (mean seconds, evaluation excluded)."""
    pretrain: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run.get("kind") == RunKind.PRETRAIN and "wall_s" in run:
            pretrain[run.get("pretraining") or run["method"].rsplit("_seed", 1)[0]].append(run["wall_s"])
    finetune: dict[str, list[float]] = defaultdict(list)
    uses: dict[str, str] = {}
    for run in runs:
        if run.get("kind") == RunKind.FINETUNE and run["method"] in rows:
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
