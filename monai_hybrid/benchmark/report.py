"""The benchmark's reports: the grid report (every row against the default recipe, per site and pooled, on both
cohorts), the ablations and the tunings, written from a stored results file. The numbers come from
``benchmark.stats``, the tables from ``benchmark.tables``, the figures from ``benchmark.figures``; the lesion report
(``benchmark.lesion_report``) is written beside the grid report from the same modules.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from monai_hybrid.benchmark.figures import plot_dice, plot_validation_curves
from monai_hybrid.benchmark.lesion_report import write_lesion_report
from monai_hybrid.benchmark.machine import one_machine, precisions
from monai_hybrid.benchmark.records import (
    budget_order,
    cohort_view,
    control_of,
    grid_records,
    ordered_rows,
    pooled_runs,
    site_of,
    with_replicates,
)
from monai_hybrid.benchmark.stats import compare, summarise
from monai_hybrid.benchmark.tables import (
    comparison_sentences,
    cost_table,
    interval_cell,
    markdown_table,
    paired_table,
    width_table,
)
from monai_hybrid.options import RunKind

__all__ = [
    "TUNING_REPORTS",
    "write_ablations_report",
    "write_grid_report",
    "write_results_report",
    "write_tuning_report",
]


def _rows(runs: list[dict], budgets: list[str]) -> list[str]:
    methods = ordered_rows(summarise(runs))
    return [m for m in methods if any(r.get("method") == m and r.get("budget") in budgets for r in runs)]


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
        rows = [m for m in _rows(view, budgets) if control_of(m) is None]
        others = [m for m in rows if m != reference]
        present = [b for b in budgets if any(r.get("budget") == b and site_of(r) == site for r in view)]
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
    sites = list(dict.fromkeys(site_of(r) for r in runs if r.get("kind") in (RunKind.FINETUNE, RunKind.BOUND)))
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
    long_rows = [m for m in rows if control_of(m) in rows]
    main_rows = [m for m in rows if m not in long_rows]
    details = []
    for site in sites:
        present = [b for b in budgets if any(r.get("budget") == b and site_of(r) == site for r in runs)]
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
            [r for r in runs if site_of(r) == site], present, out / f"dice_vs_budget_{site}.png", f"{title}: {site}"
        )
    control = "\n\n".join(
        paired_table(
            runs,
            m,
            [control_of(m)],
            [b for b in budgets if any(r.get("method") == m and r.get("budget") == b for r in runs)],
        )
        for m in long_rows
    )
    per_replicate = defaultdict(set)
    for r in runs:
        if r.get("kind") == RunKind.FINETUNE and r.get("method") == reference and "replicate" in r:
            per_replicate[r["replicate"]].add(r["seed"])
    counts = sorted({len(v) for v in per_replicate.values()})
    balance = (
        f"The {reference} runs hold {' or '.join(map(str, counts))} fine-tuning seeds per pretraining seed: the mean "
        "difference is the mean of the per-pretraining-seed means, each pretraining seed weighted alike.\n\n"
        if len(counts) > 1
        else ""
    )
    precision = precisions(r for r in runs if r.get("kind") in (RunKind.PRETRAIN, RunKind.FINETUNE))
    (out / "results.md").write_text(
        f"# Benchmark: {title}\n\n"
        f"Default recipe (the reference of every comparison): **{reference}**. Intervals: 95%, Student's t on the "
        "per-pretraining-seed means of the paired differences (fine-tuning seed s starts from pretraining seed s % P, "
        "P the pretraining seeds of its grid part; "
        "with one pretraining seed, t over the fine-tuning seeds). Verdicts: ahead / behind only where the interval "
        "excludes 0, otherwise level.\n\n"
        + f"Machine: {one_machine(runs, 'the report')}; precision: {precision}.\n\n"
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
    rows = [r for r in runs if r["kind"] == RunKind.FINETUNE and r["key"].startswith("ablation/")]
    table = markdown_table(rows, ["1 scan"])
    source = "\n".join(
        f"| {r['method']} | {r['source_val'].get('val_mean_dice', float('nan')):.3f} | "
        f"{r['source_val'].get('val_denoise_mse', float('nan')):.4f} |"
        for r in runs
        if r["kind"] == RunKind.PRETRAIN and r["method"].startswith("ablation_")
    )
    (Path(out_dir) / "ablations.md").write_text(
        "# Ablations of the hybrid defaults\n\nTarget *validation* subjects, mean foreground Dice after "
        f"fine-tuning on 1 labelled scan (mean +- std over seeds, n); variants: {variants}\n\n{table}\n\n"
        "Source validation after pretraining:\n\n| pretraining | val Dice | val denoising MSE |\n|---|---|---|\n"
        f"{source}\n"
    )
    return table


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
    runs = with_replicates(saved["runs"], len(preset.pretrain_seeds))
    budgets = list(dict.fromkeys(b.name for part in preset.grid_parts for b in part.budgets))
    budgets += [
        b
        for b in dict.fromkeys(r.get("budget") for r in runs if r.get("kind") == RunKind.FINETUNE)
        if b not in budgets and b != "all scans"
    ]
    budgets.sort(key=budget_order)
    if reference is not None and not any(
        r.get("kind") == RunKind.FINETUNE and r.get("method") == reference for r in runs
    ):
        rows = sorted({r["method"] for r in runs if r.get("kind") == RunKind.FINETUNE and "method" in r})
        raise ValueError(f"reference '{reference}' is no fine-tuned row of '{path}'; rows: {rows}.")
    one_machine(runs, f"'{path}'")
    if title is None:  # reports of one results file against two references must not share a title
        title = f"preset {preset.name}, {len(preset.pretrain_seeds)} pretraining seeds"
        title += f"; reference {reference}" if reference not in (None, preset.reference) else ""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pooled = [s for s in preset.target_sites if any(r.get("site") == s for r in runs)]
    for kind, (prefix, *_) in TUNING_REPORTS.items():
        if any(r.get("kind") == RunKind.FINETUNE and r["key"].startswith(prefix) for r in runs):
            write_tuning_report(runs, out, kind, title)
    from monai_hybrid.benchmark.data import is_lesion_site

    common = {"reference": reference or preset.reference, "fresh_seed": saved.get("fresh_seed")}
    write_lesion_report(grid_records(runs), budgets, saved["class_names"], out, title, **common)
    clean = [r for r in runs if not is_lesion_site(site_of(r))]
    return write_grid_report(clean, budgets, saved["class_names"], out, title, pooled_sites=pooled, **common)


#: The variant of each tuning (``kind``) that the others are paired with: the grid's own fine-tuning.
_TUNING_BASELINE = {"finetuning": "all"}


#: Each tuning (``kind``): its runs' key prefix, its report's file, and its title and protocol.
TUNING_REPORTS = {
    "pretraining": (
        "tune/",
        "tuning.md",
        "every row's pretraining variants",
        "Each row gets the same variants (tuning.TUNING), pretrained with the first pretraining seed",
    ),
    "finetuning": (
        "tune_ft/",
        "tuning_finetuning.md",
        "every row's fine-tuning variants",
        "Each row gets the same fine-tuning variants (rows.FINETUNE_TUNING), from its grid pretraining of the first "
        "pretraining seed",
    ),
}


def write_tuning_report(
    runs: list[dict], out_dir: str | os.PathLike, kind: str = "pretraining", title: str | None = None
) -> tuple[str, dict[str, str]]:
    """Write ``tuning.md`` (``kind`` pretraining: ``plan_tuning``'s runs) or ``tuning_finetuning.md`` (``kind``
    finetuning: ``plan_finetune_tuning``'s): each row's variants on the validation subjects of each target site and
    pooled over the sites, and the variant each row chooses (the highest pooled mean foreground Dice, averaged over
    the budgets). ``title`` (the benchmark's: preset, machine) follows the kind's own in the report's title, so two
    tunings' reports are told apart.

    Returns:
        The pooled table and row -> chosen variant.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in TUNING_REPORTS:
        raise ValueError(f"write_tuning_report: 'kind' must be one of {list(TUNING_REPORTS)}, got {kind!r}.")
    prefix, file_name, what, protocol = TUNING_REPORTS[kind]
    tuned = [r for r in runs if r.get("kind") == RunKind.FINETUNE and r["key"].startswith(prefix)]
    budgets = list(dict.fromkeys(r["budget"] for r in tuned))
    sites = list(dict.fromkeys(site_of(r) for r in tuned))
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
                cells = [interval_cell(compare(tuned, f"{row} | {variant}", f"{row} | {baseline}", b)) for b in budgets]
                rows.append(f"| {row} ({variant}) | " + " | ".join(cells) + " |")
        pairs = (
            f"\n\nEach variant minus the row's {baseline}, paired by site and fine-tuning seed (the same labelled "
            "cases; 95% t interval over the pairs, which share one pretraining: it holds the fine-tuning seeds' "
            "spread, not the pretraining's), wins over pairs, verdict:\n\n" + "\n".join(rows)
        )
    (Path(out_dir) / file_name).write_text(
        f"# Equal care: {what} on the validation subjects{f'; {title}' if title else ''}\n\n"
        f"{protocol}, fine-tuned on "
        "the same labelled cases and scored on the *validation* subjects of every target site (the test subjects "
        f"choose nothing). Mean foreground Dice pooled over {', '.join(sites)} (mean +- std over seeds, n):\n\n"
        f"{table}\n\nChosen (highest pooled mean over the budgets):\n\n{lines}{pairs}\n\nPer site:\n\n{per_site}\n"
    )
    return table, chosen
