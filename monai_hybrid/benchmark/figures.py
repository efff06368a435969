"""The figures of a benchmark report (matplotlib): Dice against the label budget, and the pretraining curves."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from monai_hybrid.benchmark.records import control_of, ordered_rows
from monai_hybrid.benchmark.stats import summarise
from monai_hybrid.options import RunKind

__all__ = ["plot_dice", "plot_validation_curves"]


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
    for method in ordered_rows(summary):
        if control_of(method):  # the convergence control: in its own table
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


def plot_validation_curves(runs: list[dict], path: str | os.PathLike, title: str = "") -> bool:
    """Source validation Dice against pretraining steps, one line per pretraining run (``source_val_curve``).

    Returns:
        Whether there was a curve to plot.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curves = [r for r in runs if r.get("kind") == RunKind.PRETRAIN and r.get("source_val_curve")]
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
