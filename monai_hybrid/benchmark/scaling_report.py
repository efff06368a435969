"""The compute axis written out (``scaling.measure_scaling``'s result): ``scaling.md`` with each point, each row's
scores and the paired differences per metric and the generated sentences; ``scaling.png`` with each row's score
above the difference, per metric and budget; and the compact block that ``monai-hybrid scaling --embed`` puts in a
results page."""

from __future__ import annotations

import math
import os
import posixpath
from pathlib import Path

import numpy as np

from monai_hybrid.atomic_write import write_text_atomic
from monai_hybrid.benchmark.blocks import GeneratedBlock
from monai_hybrid.benchmark.records import row_values
from monai_hybrid.benchmark.scaling import METRICS, Scaling
from monai_hybrid.benchmark.stats import Comparison

__all__ = ["SCALING", "scaling_block", "write_scaling_report"]

#: The block's markers in docs/results.md (``monai-hybrid scaling --embed``).
SCALING = GeneratedBlock("scaling", "monai-hybrid scaling --embed")


def _cell(c: Comparison | None, digits: int, unit: str) -> str:
    if c is None:
        return "not run"
    if not math.isfinite(c.low):
        return f"{c.mean:+.{digits}f}{unit} (no interval)"
    half = (c.high - c.low) / 2
    return (
        f"{c.mean:+.{digits}f}{unit} [{c.low:+.{digits}f}, {c.high:+.{digits}f}] ±{half:.{digits}f} "
        f"({c.units} seeds) **{c.word}**"
    )


def _mean(runs: list[dict], method: str, budget: str, metric: str) -> float:
    values = row_values(runs, method, budget, metric)
    return float(np.mean(values)) if values else math.nan


def _figure(m: Scaling, path: Path) -> None:
    """Per metric, two rows of panels (one column per budget): each row's score against compute (mean over seeds,
    bars min to max) and the paired difference (95% interval)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(
        2 * len(METRICS), len(m.budgets), figsize=(4.2 * len(m.budgets), 3.0 * 2 * len(METRICS)), squeeze=False
    )
    for i, (metric, (name, _digits, _higher, unit)) in enumerate(METRICS.items()):
        for j, b in enumerate(m.budgets):
            score, ax = axes[2 * i][j], axes[2 * i + 1][j]
            for k, (key, members) in enumerate(m.series.items()):
                shift = 1.06**k  # series at one compute (the same preset on two machines) side by side
                for n, (row, style) in enumerate(((m.reference, "-"), (m.baseline, "--"))):
                    seeds = [(p.flops, row_values(m.pooled[p.path], row, b, metric)) for p in members]
                    seeds = [(f, v) for f, v in seeds if v]
                    score.errorbar(
                        [f * (0.97, 1.03)[n] * shift for f, _ in seeds],  # the two rows side by side at one point
                        [float(np.mean(v)) for _, v in seeds],
                        yerr=[
                            [float(np.mean(v) - np.min(v)) for _, v in seeds],
                            [float(np.max(v) - np.mean(v)) for _, v in seeds],
                        ],
                        marker="os"[n], linestyle=style, capsize=3, color=f"C{k}", label=f"{row} ({m.label[key]})",
                    )  # fmt: skip
                shown = [(p.flops, m.found[(metric, p.path, b)]) for p in members]
                shown = [(f, c) for f, c in shown if c is not None]
                err = [
                    [c.mean - c.low if math.isfinite(c.low) else 0 for _, c in shown],
                    [c.high - c.mean if math.isfinite(c.high) else 0 for _, c in shown],
                ]
                ax.errorbar(
                    [f * shift for f, _ in shown], [c.mean for _, c in shown], yerr=err, marker="o", capsize=3,
                    color=f"C{k}", label=m.label[key],
                )  # fmt: skip
            ax.axhline(0, color="grey", linewidth=1)
            for a, title, ylabel in (
                (score, f"{name}, {b}: each row (min-max over seeds)", f"{name}{unit}"),
                (ax, f"{name}, {b}: difference (95% interval)", f"{m.reference} - {m.baseline}{unit}"),
            ):
                a.set_xscale("log")
                a.xaxis.set_minor_formatter(NullFormatter())  # decades labelled; the crowded minor labels left out
                a.set_title(title, fontsize=8)
                a.set_xlabel("pretraining FLOPs", fontsize=8)
                a.set_ylabel(ylabel, fontsize=8)
                a.grid(alpha=0.3)
            if i == 0 and j == 0:
                score.legend(fontsize=6)
                ax.legend(fontsize=6)
    fig.suptitle(
        f"{m.reference} and {m.baseline} on the fresh cohort against pretraining compute: scores and paired "
        "differences",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(str(path), dpi=110)
    plt.close(fig)


def _points_table(m: Scaling) -> list[str]:
    return [
        "| series | point | pretraining steps | pretraining FLOPs | counted from | pretraining wall time (min, "
        "fastest / mean) | machine | results |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {m.label[p.series]} | {p.name} | {p.steps} | {p.flops:.3g} | {p.counted} | {p.wall_min[0]:.1f} / "
            f"{p.wall_min[1]:.1f} | {p.machine} | `{p.path}` |"
            for p in m.points
        ],
    ]


def write_scaling_report(m: Scaling, out_dir: str | os.PathLike) -> None:
    """Write ``scaling.md`` (the points, each row's scores and the differences per metric, the sentences) and
    ``scaling.png`` (``_figure``) to ``out_dir``."""
    lines = [
        f"# How the gap between {m.reference} and {m.baseline} moves with pretraining compute",
        "",
        f"Points (each a stored benchmark; pretraining FLOPs = steps x the counted FLOPs of one training step of "
        f"{m.reference}'s network, forward and backward; validation not counted), in series that differ only in "
        "pretraining length, each pooled over the sites all its points share:",
        "",
        *_points_table(m),
        "",
        "Differences: the paired difference on the fresh cohort, mean [95% interval over pretraining seeds], its "
        "half-width and the verdict (ahead / behind only where the interval excludes 0).",
    ]
    for metric, (name, digits, _higher, unit) in METRICS.items():
        columns = " | ".join(f"{m.reference}, {b} | {m.baseline}, {b} | difference, {b}" for b in m.budgets)
        lines += ["", f"## {name}", "", f"| point | {columns} |", "|---|" + "---|" * (3 * len(m.budgets))]
        for p in m.points:
            cells = []
            for b in m.budgets:
                runs = m.pooled[p.path]
                cells += [
                    f"{_mean(runs, m.reference, b, metric):.{digits}f}",
                    f"{_mean(runs, m.baseline, b, metric):.{digits}f}",
                    _cell(m.found[(metric, p.path, b)], digits, unit),
                ]
            lines.append(f"| {p.name} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += [f"- {m.sentences[(metric, key, b)]}" for b in m.budgets for key in m.series]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _figure(m, out / "scaling.png")
    lines += ["", "![each row's score and the paired difference against compute](scaling.png)", ""]
    write_text_atomic(out / "scaling.md", "\n".join(lines))


def _compact(m: Scaling, key: str, budget: str) -> str:
    """One line on the trend of every metric of series ``key`` at ``budget``: its words, the slope per decade and the
    line's value one and two decades past the largest point, each with its 95% interval (``scaling.md`` has the
    sentences in full)."""
    parts = []
    for metric, (name, digits, _higher, unit) in METRICS.items():
        t = m.trends[(metric, key, budget)]
        if t.word == "too few points":
            parts.append(f"{name} no trend (fewer than two points with an interval)")
            continue
        f = f"+.{digits}f"
        ahead = ", ".join(f"{'1 decade' if d == 1 else d} on {v:{f}} [{lo:{f}}, {hi:{f}}]" for d, v, lo, hi in t.at)
        parts.append(
            f"{name} **{t.word}** (slope {t.slope:{f}}{unit} per decade [{t.slope_low:{f}}, {t.slope_high:{f}}]; "
            f"{ahead})"
        )
    return f"At {budget}, series {m.label[key]}: " + "; ".join(parts) + "."


def scaling_block(m: Scaling, figure: str, shown_as: dict[str, str] | None = None) -> str:
    """The compact account for a results page (``SCALING``'s block): the points, the Dice difference at each, a line
    per series and budget on the trend of every metric, and the figure.

    Args:
        m: the measured axis.
        figure: the path of ``scaling.png`` as the page links it.
        shown_as: how to name a point's results file (its ``path`` -> the name); default: its ``path``.
    """
    shown_as = shown_as or {}
    named = ", ".join(f"`{shown_as.get(p.path, p.path)}`" for p in m.points)
    name, digits, _higher, unit = METRICS["mean_fg_dice"]
    lines = [
        f"{m.reference} minus {m.baseline} against pretraining compute, fresh cohort, each series pooled over the "
        f"sites its points share ({'; '.join(f'{m.label[k]}: ' + ', '.join(m.sites[k]) for k in m.series)}); "
        f"raw results {named}. {name} difference, "
        "mean [95% interval over pretraining seeds] ±half-width (seeds) and verdict:",
        "",
        "| point | pretraining FLOPs | wall time per pretraining (min, fastest) | machine | "
        + " | ".join(m.budgets)
        + " |",
        "|---|---|---|---|" + "---|" * len(m.budgets),
        *[
            f"| {p.name} | {p.flops:.3g} | {p.wall_min[0]:.1f} | {p.machine} | "
            + " | ".join(_cell(m.found[("mean_fg_dice", p.path, b)], digits, unit) for b in m.budgets)
            + " |"
            for p in m.points
        ],
        "",
        f"The trend of the difference ({m.reference} minus {m.baseline}) on log10 pretraining FLOPs, per series "
        "(the points of one machine) and budget: its words (**grows** in the reference's favour or **shrinks** only "
        "where the slope's 95% interval excludes 0), the slope per decade of compute and the line's value one and two "
        "decades past the largest point, an extrapolation that assumes a line in log compute (the line's interval; a "
        "new measurement would scatter more); the intervals pair the points by pretraining seed where they share "
        f"two or more ([every sentence in full]({posixpath.join(posixpath.dirname(figure), 'scaling.md')})):",
        "",
        *[f"- {_compact(m, key, b)}" for key in m.series for b in m.budgets],
        "",
        f"![each row's score and the paired difference against compute]({figure})",
    ]
    return "\n".join(lines)
