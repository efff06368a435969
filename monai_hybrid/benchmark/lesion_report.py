"""The lesion benchmark's report: white-matter lesions, a class the source never labelled, learned from a few target
scans (docs/results-lesions.md).

Rows fine-tuned at a lesion site (``<site>_lesions``, ``monai_hybrid.benchmark.data``) are scored with the lesion
metrics of the MICCAI 2017 WMH challenge (``monai_hybrid.lesion_metrics``) and with the Dice of the source's tissue
classes. The tissue Dice is compared with the default recipe's tissue-only twin: the same row fine-tuned on the same
scans of the clean site (without lesions, tissue labels only), paired by fine-tuning seed, so that the new class is
not bought with the old ones. Intervals and verdicts are those of ``monai_hybrid.benchmark.stats``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from monai_hybrid.benchmark.data import LESION_SUFFIX, is_lesion_site
from monai_hybrid.benchmark.figures import plot_dice
from monai_hybrid.benchmark.records import cohort_view, site_of
from monai_hybrid.benchmark.stats import compare
from monai_hybrid.benchmark.tables import markdown_table, paired_table
from monai_hybrid.options import RunKind

__all__ = ["LESION_METRICS", "TISSUE_ONLY", "lesion_records", "write_lesion_report"]

#: The lesion metrics of the tables: record key -> (title, digits, higher is better).
LESION_METRICS: dict[str, tuple[str, int, bool]] = {
    "lesion_dice": ("Lesion Dice", 3, True),
    "lesion_f1": ("Lesion-wise F1", 3, True),
    "lesion_recall": ("Lesion-wise recall", 3, True),
    "lesion_avd_percent": ("Absolute volume difference (%)", 1, False),
    "lesion_hd95_mm": ("Lesion HD95 (mm; a prediction without lesion scores the volume's diagonal)", 1, False),
    "lesion_free_fp_ml": ("False-positive lesion volume on the subjects without lesions (ml)", 2, False),
    "tissue_dice": ("Tissue Dice (mean over the source's classes)", 3, True),
}
#: The name given to the reference row's tissue-only twin.
TISSUE_ONLY = "{reference} (tissue only)"


def _with_tissue(record: dict, tissues: list[str]) -> dict:
    values = [record.get(f"dice_{name}") for name in tissues]
    if tissues and all(isinstance(v, float) for v in values):
        return {**record, "tissue_dice": float(np.mean(values))}
    return record


def lesion_records(runs: list[dict], tissue_classes: list[str], reference: str) -> list[dict]:
    """The fine-tuning runs and bounds at the lesion sites, each with its ``tissue_dice`` (also in its ``fresh``
    entry), and the tissue-only twins: ``reference``'s runs at the clean site of each lesion site at the budgets the
    lesion rows ran, renamed ``TISSUE_ONLY`` and placed at the lesion site so that they pair by seed."""
    sites = {
        site_of(r) for r in runs if r.get("kind") in (RunKind.FINETUNE, RunKind.BOUND) and is_lesion_site(site_of(r))
    }
    budgets = {(site_of(r), r["budget"]) for r in runs if r.get("kind") == RunKind.FINETUNE and site_of(r) in sites}
    twin = TISSUE_ONLY.format(reference=reference)
    out = []
    for run in runs:
        if run.get("kind") not in (RunKind.FINETUNE, RunKind.BOUND):
            continue
        site = site_of(run)
        if site in sites:
            record = run
        elif (
            run.get("kind") == RunKind.FINETUNE
            and run.get("method") == reference
            and (site + LESION_SUFFIX, run["budget"]) in budgets
        ):
            record = {**run, "method": twin, "site": site + LESION_SUFFIX}
        else:
            continue
        record = _with_tissue(record, tissue_classes)
        if isinstance(record.get("fresh"), dict):
            record = {**record, "fresh": _with_tissue(record["fresh"], tissue_classes)}
        out.append(record)
    return out


def _present(runs: list[dict], budgets: list[str]) -> list[str]:
    return [b for b in budgets if any(r.get("budget") == b and r.get("kind") == RunKind.FINETUNE for r in runs)]


def _aims(runs: list[dict], reference: str, site: str, budgets: list[str]) -> list[str]:
    """The issue's aims, each stated with the measured figure and whether it is met."""
    lines = []
    top = budgets[-1]
    for metric, title in (("lesion_dice", "lesion Dice"), ("lesion_f1", "lesion-wise F1")):
        values = [
            float(r[metric])
            for r in runs
            if r.get("method") == reference and r.get("budget") == top and site_of(r) == site and metric in r
        ]
        values = [v for v in values if math.isfinite(v)]
        if values:
            mean = float(np.mean(values))
            met = "met" if mean >= 0.70 else "not met"
            lines.append(f"- {title} of {reference} at {top} at least 0.70: {mean:.3f} ({len(values)} runs), **{met}**")
    first = budgets[0]
    for other in [m for m in ("scratch", "supervised_aug") if any(r.get("method") == m for r in runs)]:
        c = compare(runs, reference, other, first, "lesion_dice", site)
        if c is not None:
            met = "met" if c.word == "ahead" else "not met"
            lines.append(
                f"- {reference} ahead of {other} on lesion Dice at {first} (interval above 0): {c.mean:+.3f} "
                f"[{c.low:+.3f}, {c.high:+.3f}], **{c.word}**, **{met}**."
            )
    twin = TISSUE_ONLY.format(reference=reference)
    for budget in budgets:
        c = compare(runs, reference, twin, budget, "tissue_dice", site)
        if c is not None:
            within = math.isfinite(c.low) and c.low >= -0.01
            lines.append(
                f"- tissue Dice within 0.01 of the tissue-only model at {budget} (interval above -0.01): {c.mean:+.3f} "
                f"[{c.low:+.3f}, {c.high:+.3f}], **{'met' if within else 'not met'}**."
            )
    return lines


def _cohort(runs: list[dict], reference: str, sites: list[str], budgets: list[str], where: str) -> str:
    parts = []
    for site in sites:
        here = [r for r in runs if site_of(r) == site]
        present = _present(here, budgets)
        rows = sorted({r["method"] for r in here if r.get("kind") == RunKind.FINETUNE})
        others = [m for m in rows if m != reference and not m.endswith("(tissue only)")]
        twin = TISSUE_ONLY.format(reference=reference)
        tables = []
        for metric, (title, digits, higher) in LESION_METRICS.items():
            if not any(metric in r for r in here):
                continue
            table = markdown_table(here, present, metric, digits, site)
            compared = [twin] if metric == "tissue_dice" else others
            diffs = paired_table(here, reference, compared, present, metric, site, higher, digits)
            tables.append(f"{title}:\n\n{table}\n\nPaired differences:\n\n{diffs}")
        aims = "\n".join(_aims(here, reference, site, present))
        parts.append(f"### {site} ({where})\n\n" + "\n\n".join(tables) + f"\n\nThe aims:\n\n{aims}\n")
    return "\n".join(parts)


def write_lesion_report(
    runs: list[dict],
    budgets: list[str],
    class_names: list[str],
    out_dir: str | os.PathLike,
    title: str,
    reference: str = "hybrid",
    fresh_seed: int | None = None,
) -> str | None:
    """Write ``results_lesions.md`` and one ``lesions_vs_budget_<site>.png`` per lesion site, for the fresh test
    cohort (when the runs carry one) and the development test cohort: every lesion metric per row and budget
    (``mean +- std (n)`` over seeds), ``reference`` minus each other row with 95% intervals and verdicts, the tissue
    Dice against the tissue-only twin, and the issue's aims with the measured figures.

    Args:
        runs: a benchmark's records (``results.json``'s ``runs``).
        budgets: budget names in table order.
        class_names: the source's classes, background first (their Dice is the tissue Dice).
        out_dir: folder of the report.
        title: its title.
        reference: the default recipe.
        fresh_seed: the fresh cohort's phantom seed.

    Returns:
        The lesion Dice table of the first lesion site on the development test cohort; ``None`` (nothing written)
        when no run is at a lesion site.
    """
    records = lesion_records(runs, list(class_names[1:]), reference)
    sites = list(dict.fromkeys(site_of(r) for r in records if r.get("kind") == RunKind.FINETUNE))
    if not sites:
        return None
    out = Path(out_dir)
    fresh = cohort_view(records)
    sections = []
    if fresh:
        sections.append(
            f"## Fresh test cohort (phantom seed {fresh_seed}, never used in development)\n\n"
            + _cohort(fresh, reference, sites, budgets, "fresh cohort")
        )
    sections.append("## Development test cohort\n\n" + _cohort(records, reference, sites, budgets, "development"))
    for site in sites:
        here = [r for r in (fresh or records) if site_of(r) == site]
        plot_dice(
            here, _present(here, budgets), out / f"lesions_vs_budget_{site}.png", f"{title}: {site}", "lesion_dice"
        )
    (out / "results_lesions.md").write_text(
        f"# Lesion benchmark: {title}\n\nDefault recipe (the reference of every comparison): **{reference}**; the "
        "mask head of every pretrained row grows by the lesion channel (new_class_init zero). Lesion metrics of the "
        "MICCAI 2017 WMH challenge on the lesion class (3D, 26-connectivity; subjects without lesions are left out "
        "of their means and report their false-positive volume instead). Intervals: 95%, Student's t on the "
        "per-pretraining-seed means of the paired differences; verdicts ahead / behind only where the interval "
        f"excludes 0. The tissue-only twin: {reference} fine-tuned on the same scans of the clean site.\n\n"
        + "\n\n".join(sections)
        + "\n"
    )
    first = [r for r in records if site_of(r) == sites[0]]
    return markdown_table(first, _present(first, budgets), "lesion_dice", 3, sites[0])
