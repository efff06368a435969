"""Tables and the plot of a benchmark's results."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["markdown_table", "plot_dice", "summarise", "write_ablations_report", "write_grid_report"]

_ORDER = ["hybrid", "hybrid_semi", "supervised", "diffusion", "contrastive", "scratch", "scratch_long"]


def summarise(runs: list[dict], metric: str = "mean_fg_dice") -> dict[str, dict[str, tuple[float, float, int]]]:
    """``method -> budget -> (mean, std, n)`` of ``metric`` over seeds (fine-tuning runs and bounds)."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run.get("kind") in ("finetune", "bound") and metric in run:
            values[run["method"]][run["budget"]].append(float(run[metric]))
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for method, budgets in values.items():
        out[method] = {}
        for budget, v in budgets.items():
            arr = np.asarray([x for x in v if x == x], dtype=np.float64)
            out[method][budget] = (
                float(arr.mean()) if arr.size else math.nan,
                float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
                int(arr.size),
            )
    return out


def _methods(summary: dict) -> list[str]:
    known = [m for m in _ORDER if m in summary]
    return known + sorted(m for m in summary if m not in known)


def markdown_table(runs: list[dict], budgets: list[str], metric: str = "mean_fg_dice", digits: int = 3) -> str:
    """A markdown table: methods as rows, budgets as columns, ``mean +- std (n)`` over seeds.

    The bounds (oracle: all target labels; zero-shot: none) fill a last column of their own.
    """
    summary = summarise(runs, metric)
    grid = [m for m in _methods(summary) if any(b in summary[m] for b in budgets)]
    bounds = [m for m in _methods(summary) if m not in grid]

    def cell(value: tuple[float, float, int]) -> str:
        mean, std, n = value
        return f"{mean:.{digits}f} +- {std:.{digits}f} ({n})"

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


def plot_dice(
    runs: list[dict], budgets: list[str], path: str | os.PathLike, title: str = "", metric: str = "mean_fg_dice"
) -> None:
    """Mean foreground Dice against the label budget, one line per method (mean and std over seeds)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary = summarise(runs, metric)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    x = np.arange(len(budgets))
    for method in _methods(summary):
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
    ax.set_ylabel("mean foreground Dice (test)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(str(Path(path)), dpi=110)
    plt.close(fig)


def write_grid_report(
    runs: list[dict], budgets: list[str], class_names: list[str], out_dir: str | os.PathLike, title: str
) -> str:
    """Write ``results.md`` (mean foreground Dice, Dice per class, HD95) and ``dice_vs_budget.png`` to ``out_dir``.

    Returns:
        The main table (mean foreground Dice).
    """
    out = Path(out_dir)
    table = markdown_table(runs, budgets)
    per_class = "\n\n".join(
        f"{name}:\n\n" + markdown_table(runs, budgets, metric=f"dice_{name}") for name in class_names[1:]
    )
    hd95 = markdown_table(runs, budgets, metric="mean_hd95", digits=2)
    (out / "results.md").write_text(
        f"# Benchmark: {title}\n\nMean foreground Dice on the target test subjects (mean +- std over seeds, n):\n\n"
        f"{table}\n\nDice per class:\n\n{per_class}\n\nMean HD95 (mm):\n\n{hd95}\n"
    )
    plot_dice(runs, budgets, out / "dice_vs_budget.png", title=title)
    return table


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
