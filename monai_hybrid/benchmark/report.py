"""Tables and the plot of a benchmark's results."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "markdown_table",
    "paired_table",
    "plot_dice",
    "plot_validation_curves",
    "summarise",
    "write_ablations_report",
    "write_grid_report",
]

_ORDER = [
    "hybrid",
    "hybrid_target",
    "hybrid_semi",
    "supervised",
    "supervised_aug",
    "synth",
    "diffusion",
    "contrastive",
    "scratch",
    "scratch_long",
]


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


def _control_of(method: str) -> str | None:
    """The row that ``method`` is the fine-tuning convergence control of (``hybrid_long`` -> ``hybrid``), or None.
    ``scratch_long`` is a row of its own (the long schedule from scratch), not a control."""
    if method.endswith("_long") and method != "scratch_long":
        return method.removesuffix("_long")
    return None


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


def paired_differences(
    runs: list[dict], reference: str, other: str, budget: str, metric: str = "mean_fg_dice"
) -> list[float]:
    """``reference`` minus ``other`` on ``metric``, fine-tuning seed by seed (the same labelled cases) at ``budget``."""
    by_seed: dict[str, dict[int, float]] = {reference: {}, other: {}}
    for run in runs:
        if run.get("kind") == "finetune" and run.get("budget") == budget and run.get("method") in by_seed:
            by_seed[run["method"]][run["seed"]] = float(run[metric])
    seeds = sorted(set(by_seed[reference]) & set(by_seed[other]))
    return [by_seed[reference][s] - by_seed[other][s] for s in seeds]


def paired_table(
    runs: list[dict], reference: str, others: list[str], budgets: list[str], metric: str = "mean_fg_dice"
) -> str:
    """A markdown table of ``reference`` minus each of ``others``, paired by seed: ``mean +- std (wins/n)``, where
    wins counts the seeds at which ``reference`` is higher."""
    lines = [f"| {reference} minus | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
    for other in others:
        cells = []
        for budget in budgets:
            d = np.asarray(paired_differences(runs, reference, other, budget, metric), dtype=np.float64)
            d = d[np.isfinite(d)]
            if not d.size:
                cells.append("")
                continue
            std = float(d.std(ddof=1)) if d.size > 1 else 0.0
            cells.append(f"{d.mean():+.3f} +- {std:.3f} ({int((d > 0).sum())}/{d.size})")
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
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
    """Write ``results.md`` (mean foreground Dice, the paired differences of the hybrid rows against every other row,
    Dice per class, HD95 in mm, classes missed, the fine-tuning convergence control) and ``dice_vs_budget.png``.

    Returns:
        The main table (mean foreground Dice).
    """
    out = Path(out_dir)
    table = markdown_table(runs, budgets)
    methods = _methods(summarise(runs))
    grid = [m for m in methods if any(r.get("method") == m and r.get("budget") in budgets for r in runs)]
    long_rows = [m for m in grid if _control_of(m) in grid]
    rows = [m for m in grid if m not in long_rows]
    paired = "\n\n".join(
        paired_table(runs, ref, [m for m in rows if m != ref], budgets)
        for ref in ("hybrid", "hybrid_target")
        if ref in rows
    )
    per_class = "\n\n".join(
        f"{name}:\n\n" + markdown_table(runs, budgets, metric=f"dice_{name}") for name in class_names[1:]
    )
    hd95 = markdown_table(runs, budgets, metric="mean_hd95", digits=2)
    missed = markdown_table(runs, budgets, metric="n_missed", digits=2)
    control = "\n\n".join(
        paired_table(
            runs,
            m,
            [_control_of(m)],
            [b for b in budgets if any(r.get("method") == m and r.get("budget") == b for r in runs)],
        )
        for m in long_rows
    )
    (out / "results.md").write_text(
        f"# Benchmark: {title}\n\nMean foreground Dice on the target test subjects (mean +- std over seeds, n):\n\n"
        f"{table}\n\nPaired differences (same seed, same labelled cases; mean +- std, wins/n):\n\n{paired}\n\n"
        f"Dice per class:\n\n{per_class}\n\nMean HD95 (mm; a missed class scores the volume's diagonal):\n\n{hd95}"
        f"\n\nClasses missed per case (empty in the prediction or in the reference, not both):\n\n{missed}\n\n"
        f"Fine-tuning convergence control (the same rows fine-tuned longer, minus the standard schedule):\n\n"
        f"{control or 'none run'}\n"
    )
    plot_dice(runs, budgets, out / "dice_vs_budget.png", title=title)
    plot_validation_curves(runs, out / "pretraining_curves.png", title=title)
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
