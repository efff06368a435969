"""The answer on the first screen: for each label budget, the Dice and HD95 a site can expect from the default recipe
and from the baseline, their paired difference with its verdict, and the recommendation that follows, generated from
a benchmark's stored results and written between two markers of README.md and docs/results.md."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from monai_hybrid.benchmark.blocks import GeneratedBlock
from monai_hybrid.benchmark.machine import one_machine
from monai_hybrid.benchmark.presets import BenchmarkPreset, bundle_preset, rate_label
from monai_hybrid.benchmark.records import (
    cohort_view,
    complete_sites,
    grid_records,
    pooled_runs,
    row_values,
    site_of,
    with_replicates,
)
from monai_hybrid.benchmark.rows import METHODS
from monai_hybrid.benchmark.shipped import SHIPPED_KEYS
from monai_hybrid.benchmark.stats import Comparison, compare
from monai_hybrid.options import RunKind

__all__ = ["WHAT_TO_EXPECT", "expectation"]

#: The block's markers in README.md, docs/results.md and the bundle's README.
WHAT_TO_EXPECT = GeneratedBlock("what-to-expect", "monai-hybrid report --expect")

_SITE_NAMES = {"site_b_t2w": "T2w", "site_c_flair": "FLAIR", "site_d_pd": "PD", "site_c_flair_raw": "raw FLAIR"}


def _spread(runs: list[dict], method: str, budget: str, metric: str, digits: int) -> str:
    """The mean over pretraining seeds (each seed's runs averaged first, as the difference is) and the range over
    runs."""
    values = row_values(runs, method, budget, metric)
    if not values:
        return "not run"
    by_seed: dict[int, list[float]] = {}
    for r in runs:
        if r.get("method") == method and r.get("budget") == budget and math.isfinite(float(r.get(metric, math.nan))):
            by_seed.setdefault(r["replicate"], []).append(float(r[metric]))
    mean = sum(sum(v) / len(v) for v in by_seed.values()) / len(by_seed)
    return f"{mean:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _difference(c: Comparison | None, digits: int) -> str:
    if c is None:
        return "not measured"
    if not math.isfinite(c.low):
        return f"{c.mean:+.{digits}f}, no interval: **not measured**"
    return f"{c.mean:+.{digits}f} [{c.low:+.{digits}f}, {c.high:+.{digits}f}] **{c.word}**"


def _word(c: Comparison | None) -> str:
    """The verdict of ``c``; ``not measured`` without a comparison or without an interval (a single run)."""
    return "not measured" if c is None or not math.isfinite(c.low) else c.word


def _where(words: dict[str, str], word: str) -> list[str]:
    return [budget for budget, w in words.items() if w == word]


def _recommendation(reference: str, baseline: str, words: dict[str, dict[str, str]], widest: str) -> str:
    """One plain recommendation that follows from the verdict words (``metric -> budget -> word``): "level" means no
    difference detected within the interval (``widest``, the widest Dice interval), never "the same"."""
    dice = words["Dice"]
    switch = (
        'pretrain with `--config_file "$(monai-hybrid configs pretrain intensity_augmentation)" --method#mode '
        "supervised`"
        if baseline == "supervised_aug"
        else f"use {baseline}'s recipe"
    )
    ahead = {m: _where(w, "ahead") for m, w in words.items()}
    behind = {m: _where(w, "behind") for m, w in words.items()}
    gains = " and on ".join(f"{m} at {', '.join(b)}" for m, b in ahead.items() if b)
    losses = " and on ".join(f"{m} at {', '.join(b)}" for m, b in behind.items() if b)
    unmeasured = _where(dice, "not measured")
    gap = f" Not measured: Dice at {', '.join(unmeasured)}." if unmeasured else ""
    if behind["Dice"]:
        return (
            f"**{baseline} is ahead on Dice at {', '.join(behind['Dice'])}**: at those budgets, {switch} rather than "
            f"the default." + (f" The default ({reference}) is ahead on {gains}." if gains else "") + gap
        )
    if ahead["Dice"]:
        return (
            f"**Use the default ({reference})**: ahead of {baseline} on Dice at {', '.join(ahead['Dice'])}"
            + (f", behind on {losses}" if losses else "")
            + "."
            + gap
        )
    text = (
        f"**No difference in Dice detected** between the default ({reference}) and {baseline} at any budget measured "
        f"(level: each interval holds 0; the widest, {widest}, leaves every difference inside it possible)"
    )
    if gains and not losses:
        return text + f"; keep the default, which is ahead on {gains}." + gap
    if losses and not gains:
        return text + f", but the default is behind on {losses}: at those budgets the baseline has the edge." + gap
    if gains and losses:
        return text + f"; the default is ahead on {gains} and behind on {losses}." + gap
    return (
        text + ", nor on HD95 or on false positives far from the brain: nothing measured here favours either, so "
        f"either serves: the bundle keeps {reference} as its default; for {baseline}, {switch}." + gap
    )


def _shown(field: str, value: object) -> str:
    return rate_label(value) if field.endswith("learning_rate") and isinstance(value, float) else str(value)


def _rates(preset: BenchmarkPreset, rows: tuple[str, ...]) -> str:
    """The pretraining learning rate of ``rows``: one value where they share it, else each row's."""
    pretrained = [row for row in rows if row in METHODS and METHODS[row].pretrain]  # scratch has no pretraining
    rates = {row: rate_label(preset.pretrain_learning_rate(METHODS[row].pretrain)) for row in pretrained}
    if not rates:
        return "no pretraining"
    if len(set(rates.values())) == 1:
        return f"learning rate {next(iter(rates.values()))}"
    return "learning rates " + ", ".join(f"{rate} ({row})" for row, rate in rates.items())


def _against_shipped(preset: BenchmarkPreset) -> str:
    """How the measured settings stand to the bundle shipped now: a ``bundle`` preset's results were measured at the
    configs of their day, and a later change of a default (a learning rate chosen by tuning, say) must show."""
    if preset.name != "bundle":
        return "not the shipped model"
    shipped = bundle_preset()
    fields = ("resolution", "pretrain_steps", "finetune_steps", *SHIPPED_KEYS)
    changed = [f for f in fields if getattr(preset, f) != getattr(shipped, f)]
    if not changed:
        return "the bundle configs' own settings"

    def named(f: str) -> str:  # as a user finds it: the config file's key
        return f"{SHIPPED_KEYS[f][0]} `{SHIPPED_KEYS[f][1]}`" if f in SHIPPED_KEYS else f"`{f}`"

    now = "; ".join(
        f"{named(f)} now {_shown(f, getattr(shipped, f))}, measured at {_shown(f, getattr(preset, f))}" for f in changed
    )
    return f"the bundle configs' settings when measured; the shipped configs have changed since: {now}"


def expectation(
    results: str | os.PathLike,
    baseline: str = "supervised_aug",
    shown_as: str | None = None,
    reference: str | None = None,
) -> str:
    """The "what to expect" block of a stored benchmark (``results.json``): the default recipe (the preset's
    reference row, or ``reference``) and ``baseline`` at the budgets of the grid's main part, on the fresh test
    cohort, pooled over the target sites where both ran every one of them.

    Args:
        results: a benchmark's ``results.json`` (or its copy in docs/results/).
        baseline: the row the default recipe is compared with.
        shown_as: how the block names the results file (default: its path as given).
        reference: the default recipe's row (default: the preset's ``reference``).

    Returns:
        Markdown: one line on what was measured and where, the table, the recommendation.

    Raises:
        FileNotFoundError: no ``results``.
        ValueError: the reference or the baseline has no fine-tuning run on the fresh cohort, or the runs come from
            more than one machine.
    """
    path = Path(results)
    if not path.is_file():
        raise FileNotFoundError(f"No results file '{path}'; pass a benchmark's results.json.")
    saved = json.loads(path.read_text())
    preset = BenchmarkPreset.from_json(saved["preset"])
    reference = reference or preset.reference
    records = with_replicates(saved["runs"], len(preset.pretrain_seeds))
    fresh = cohort_view(grid_records(records))
    tuned = [r for r in fresh if r.get("kind") == RunKind.FINETUNE and r.get("method") in (reference, baseline)]
    # the main part's budgets (the preset's question), as far as both rows ran them
    ran = {(r["budget"], r["method"]) for r in tuned}
    budgets = [b.name for b in preset.budgets if (b.name, reference) in ran and (b.name, baseline) in ran]
    # the sites where both rows ran every budget (pooled over them, seed by seed)
    sites = complete_sites(tuned, (reference, baseline), budgets)
    if not budgets or not sites:
        raise ValueError(
            f"'{path}' has no target site where {reference} and {baseline} were both fine-tuned at every budget and "
            "scored on the fresh cohort; run the grid's main part first."
        )
    machine = one_machine(saved["runs"], f"'{path}'")  # every record, as the report counts them
    runs = pooled_runs(tuned, sites) if len(sites) > 1 else [r for r in tuned if site_of(r) == sites[0]]
    pretrain_seeds = sorted({r.get("replicate") for r in runs if r.get("method") == reference})
    per_budget = {b: len(row_values(runs, reference, b, "mean_fg_dice")) for b in budgets}
    precisions = sorted({str(r.get("precision", "float32")) for r in tuned})
    words: dict[str, dict[str, str]] = {"Dice": {}, "HD95": {}, "far false positives": {}}
    rows = []
    widest: tuple[float, str] | None = None
    for budget in budgets:
        dice = compare(runs, reference, baseline, budget, "mean_fg_dice")
        hd95 = compare(runs, reference, baseline, budget, "mean_hd95", higher_is_better=False)
        far = compare(runs, reference, baseline, budget, "fp_far_ml", higher_is_better=False)
        for name, c in (("Dice", dice), ("HD95", hd95), ("far false positives", far)):
            words[name][budget] = _word(c)
        if dice is not None and math.isfinite(dice.low) and (widest is None or dice.high - dice.low > widest[0]):
            widest = (dice.high - dice.low, f"[{dice.low:+.3f}, {dice.high:+.3f}] at {budget}")
        rows.append(
            f"| {budget} | {_spread(runs, reference, budget, 'mean_fg_dice', 3)} | "
            f"{_spread(runs, baseline, budget, 'mean_fg_dice', 3)} | {_difference(dice, 3)} | "
            f"{_spread(runs, reference, budget, 'mean_hd95', 1)} | "
            f"{_spread(runs, baseline, budget, 'mean_hd95', 1)} | {_difference(hd95, 1)} | "
            f"{_difference(far, 1)} |"
        )
    contrasts = ", ".join(_SITE_NAMES.get(s, s) for s in sites)
    scale = (
        f"the `{preset.name}` preset: {preset.resolution:g} mm, crops {preset.roi[0]} x {preset.roi[1]}, channels "
        f"{'-'.join(map(str, preset.channels))}, batch {preset.batch_volumes * preset.samples_per_volume}, "
        f"{preset.pretrain_steps} pretraining steps at {_rates(preset, (reference, baseline))} and "
        f"{preset.finetune_steps} fine-tuning steps at {rate_label(preset.finetune_learning_rate)}"
    )
    seeds = ", ".join(str(n) for n in sorted(set(per_budget.values())))
    kind = _against_shipped(preset)
    header = (
        f"Measured at {scale} ({kind}"
        f"; {' / '.join(precisions)}), on the phantom's fresh test cohort "
        f"({'pooled over ' if len(sites) > 1 else ''}{contrasts}); {len(pretrain_seeds)} pretraining seeds, "
        f"{seeds} runs per cell; machine: {machine}; raw results `{shown_as or path}`. Dice: mean "
        "foreground Dice, mean over pretraining seeds (min-max over runs); HD95 in mm; differences: default minus "
        "baseline, mean [95% interval over pretraining seeds] and the verdict (ahead / behind only where the interval "
        "excludes 0; level: no difference detected); far false positives: predicted brain farther than 10 mm from it, "
        "in ml (lower is better)."
    )
    table = [
        f"| labelled at your site | Dice, {reference} (default) | Dice, {baseline} | Dice difference | "
        f"HD95, {reference} | HD95, {baseline} | HD95 difference | far false positives, difference (ml) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    advice = _recommendation(reference, baseline, words, widest[1] if widest else "none measured")
    return "\n".join([header, "", *table, "", advice])
