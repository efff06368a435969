"""The report's paired intervals (by hand), verdict words at their edges, pooled and fresh-cohort views."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from monai_hybrid.benchmark import PRESETS, write_results_report
from monai_hybrid.benchmark.records import cohort_view, complete_sites, pooled_runs, with_replicates
from monai_hybrid.benchmark.stats import compare, verdict
from monai_hybrid.benchmark.tables import comparison_sentences, markdown_table

# Student's t quantiles (0.975) by hand from tables: df 1 and df 2
T1, T2 = 12.706204736, 4.302652730


def _run(method, seed, dice, hd=10.0, site="s", budget="1 slice", replicate=None, **more):
    return {
        "kind": "finetune",
        "method": method,
        "budget": budget,
        "site": site,
        "seed": seed,
        "replicate": seed % 2 if replicate is None else replicate,
        "mean_fg_dice": dice,
        "mean_hd95": hd,
        **more,
    }


def test_interval_is_t_on_the_pretraining_seed_means():
    # paired differences 0.10, 0.02, 0.06, 0.04 at seeds 0..3; replicate = seed % 2: means 0.08 and 0.03
    diffs = [0.10, 0.02, 0.06, 0.04]
    runs = [_run("ref", s, 0.5 + d) for s, d in enumerate(diffs)] + [_run("oth", s, 0.5) for s in range(4)]
    c = compare(runs, "ref", "oth", "1 slice")
    sd = math.sqrt(((0.08 - 0.055) ** 2 + (0.03 - 0.055) ** 2) / 1)
    half = T1 * sd / math.sqrt(2)
    assert c.mean == pytest.approx(0.055)
    assert (c.low, c.high) == (pytest.approx(0.055 - half), pytest.approx(0.055 + half))
    assert (c.wins, c.n, c.units, c.word) == (4, 4, 2, "level")


def test_one_pretraining_seed_falls_back_to_t_over_the_fine_tuning_seeds():
    runs = [_run("ref", s, 0.5 + d, replicate=0) for s, d in enumerate([0.1, 0.2, 0.3])]
    runs += [_run("oth", s, 0.5, replicate=0) for s in range(3)]
    c = compare(runs, "ref", "oth", "1 slice")
    half = T2 * 0.1 / math.sqrt(3)
    assert (c.mean, c.low, c.high) == (pytest.approx(0.2), pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    assert c.units == 3 and c.word == "level"  # the interval reaches below 0


def test_hd95_lower_is_better_and_wins_count_the_reference_side():
    runs = [_run("ref", s, 0.5, hd=5.0 + 0.1 * s, replicate=0) for s in range(3)]
    runs += [_run("oth", s, 0.5, hd=9.0, replicate=0) for s in range(3)]
    c = compare(runs, "ref", "oth", "1 slice", "mean_hd95", higher_is_better=False)
    assert c.high < 0 and c.word == "ahead" and c.wins == 3


@pytest.mark.parametrize(
    "low, high, higher_is_better, word",
    [
        (0.0, 0.1, True, "level"),  # touching 0 is level
        (1e-9, 0.1, True, "ahead"),
        (-0.1, 0.0, True, "level"),
        (-0.2, -1e-9, True, "behind"),
        (0.5, 1.0, False, "behind"),  # HD95: the reference's is larger
        (-1.0, -0.5, False, "ahead"),
        (math.nan, math.nan, True, "level"),  # no interval (a single run)
    ],
)
def test_verdict_words_at_the_edges(low, high, higher_is_better, word):
    assert verdict(low, high, higher_is_better) == word


def test_a_single_run_shows_n_1_never_a_zero_spread():
    table = markdown_table([_run("ref", 0, 0.777)], ["1 slice"])
    assert "0.777 (n = 1)" in table and "+-" not in table
    c = compare([_run("ref", 0, 0.6), _run("oth", 0, 0.5)], "ref", "oth", "1 slice")
    assert c.n == 1 and math.isnan(c.low) and c.word == "level"


def test_pooled_runs_average_the_sites_of_each_seed_and_drop_incomplete_ones():
    runs = [_run("ref", 0, 0.6, site="a"), _run("ref", 0, 0.8, site="b"), _run("ref", 1, 0.7, site="a")]
    pooled = pooled_runs(runs, ["a", "b"])
    assert len(pooled) == 1 and pooled[0]["mean_fg_dice"] == pytest.approx(0.7) and pooled[0]["site"] == "pooled"


def test_complete_sites_need_every_row_scored_at_every_budget():
    runs = [_run(m, 0, 0.6, site=s) for m in ("ref", "oth") for s in ("a", "b", "c")]
    runs += [_run("ref", 0, 0.7, budget="1 scan", site=s) for s in ("a", "b", "c")]
    runs += [_run("oth", 0, 0.7, budget="1 scan", site="a"), _run("oth", 0, math.nan, budget="1 scan", site="b")]
    assert complete_sites(runs, ("ref", "oth"), ["1 slice", "1 scan"]) == ["a"]  # b: a NaN Dice; c: not run
    assert complete_sites(runs, ("ref", "oth"), ["1 slice"]) == ["a", "b", "c"]


def test_records_without_a_replicate_get_it_from_their_seed():
    old = {k: v for k, v in _run("ref", 5, 0.6).items() if k != "replicate"}
    runs = with_replicates([old, _run("ref", 6, 0.6, replicate=3), {"kind": "pretrain"}], 4)
    assert [r.get("replicate") for r in runs] == [1, 3, None]


def test_fresh_cohort_view_and_generated_sentences():
    runs = [_run("ref", s, 0.5, fresh={"mean_fg_dice": 0.9 + 0.01 * s, "mean_hd95": 3.0}) for s in range(4)]
    runs += [_run("oth", s, 0.5, fresh={"mean_fg_dice": 0.5, "mean_hd95": 3.0}) for s in range(4)]
    fresh = cohort_view(runs)
    assert [r["mean_fg_dice"] for r in fresh[:2]] == [0.9, pytest.approx(0.91)]
    sentences = comparison_sentences(fresh, "ref", ["oth"], ["1 slice"], "s", "site s")
    assert sentences[0].startswith(
        "At 1 slice (site s), ref is **ahead** of oth on Dice (+0.415 [+0.351, +0.479] (4/4))"
    )
    assert "**level** with it on HD95" in sentences[0]
    assert comparison_sentences(runs, "ref", ["oth"], ["1 slice"], "s", "s")[0].count("**level** with") == 2


def test_tuning_gives_every_row_the_same_variants_on_validation_subjects(tmp_path):
    from monai_hybrid.benchmark import PRESETS, TUNING, plan_tuning
    from monai_hybrid.benchmark.plan import FinetuneStep
    from monai_hybrid.benchmark.report import write_tuning_report

    preset = PRESETS["cpu"]
    steps = plan_tuning(preset)
    finetunes = [s for s in steps if isinstance(s, FinetuneStep)]
    variants = {
        row: {s.method.split(" | ")[1] for s in finetunes if s.method.startswith(row + " |")} for row in preset.methods
    }
    assert all(v == set(TUNING) for v in variants.values())  # equal care: the same variants for every row
    assert {s.eval_list for s in finetunes} == {"validation"}  # the test subjects choose nothing
    assert {s.site for s in finetunes} == set(preset.target_sites)
    grid = next(s for s in finetunes if s.method == "hybrid | lr2e-3")  # the cpu preset's learning rate
    assert grid.needs == ("pretrain/hybrid/seed0",)  # the grid's own pretraining, run once for both
    pretrains = {s.key: s for s in steps if not isinstance(s, FinetuneStep)}
    assert pretrains["pretrain/hybrid/seed0"].overrides.get("learning_rate") is None
    assert {
        pretrains[s.needs[0]].overrides.get("learning_rate") for s in finetunes if s.method.startswith("hybrid")
    } == {None, 2.5e-4, 5e-4, 1e-3}
    # a variant's folder is named by its place in TUNING: variants added later must not rename those that ran
    assert pretrains["pretrain/tune_hybrid_0/seed0"].overrides["learning_rate"] == 5e-4
    assert pretrains["pretrain/tune_hybrid_3/seed0"].overrides["learning_rate"] == 2.5e-4
    # the report chooses the variant with the highest pooled mean over the budgets
    runs = [
        {
            "kind": "finetune",
            "key": f"tune/{s.method}/{s.site}/{s.budget.key}/seed{s.seed}",
            "method": s.method,
            "budget": s.budget.name,
            "site": s.site,
            "seed": s.seed,
            "replicate": 0,
            "mean_fg_dice": 0.7 if "2e-3" in s.method else 0.5,
        }
        for s in finetunes
    ]
    _, chosen = write_tuning_report(runs, tmp_path)
    assert chosen == {"hybrid": "lr2e-3", "supervised_aug": "lr2e-3"}
    text = (tmp_path / "tuning.md").read_text()
    assert "**lr2e-3**" in text
    assert "| hybrid (lr2e-3) | 0.700" in text and "| hybrid | lr" not in text  # one cell per row name


def test_seeds_needed_for_a_half_width_by_hand():
    from monai_hybrid.benchmark.stats import Comparison, seeds_for_half_width

    # two units, sd 0.0354 (the first test's example): t(0.975, n-1) * 0.0354 / sqrt(n) is 0.0327 at n = 7
    # (2.447 * 0.0354 / 2.646) and 0.0296 at n = 8 (2.365 * 0.0354 / 2.828): 8 pretraining seeds for +-0.03
    sd = math.sqrt(0.00125)
    half = T1 * sd / math.sqrt(2)
    c = Comparison(0.055, 0.055 - half, 0.055 + half, 4, 4, 2, "level")
    assert seeds_for_half_width(c, 0.03) == 8
    assert seeds_for_half_width(Comparison(0.1, math.nan, math.nan, 1, 1, 1, "level"), 0.03) is None


def test_a_stored_results_file_gives_the_grid_report_and_the_tuning_table(tmp_path):
    import json

    from monai_hybrid.benchmark import PRESETS, write_results_report
    from monai_hybrid.benchmark.store import _jsonable

    preset = PRESETS["tiny"]
    site = preset.target_sites[0]
    budget = preset.budgets[0]
    runs = [
        _run(m, s, 0.5 + (0.1 if m == preset.reference else 0.0) + 0.01 * s, site=site, budget=budget.name)
        | {"key": f"{m}/{site}/{budget.key}/seed{s}", "precision": "float32"}
        for m in preset.methods
        for s in range(4)
    ] + [
        _run(f"{m} | {v}", s, 0.4 + 0.1 * (v == "lr2e-3"), site=site, budget=budget.name, replicate=0)
        | {"key": f"tune/{m} | {v}/{site}/{budget.key}/seed{s}", "eval_list": "validation"}
        for m in preset.methods
        for v in ("lr5e-4", "lr1e-3", "lr2e-3")
        for s in range(2)
    ]
    saved = {"preset": _jsonable(preset), "class_names": ["background", "a"], "fresh_seed": None, "runs": runs}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(saved))
    write_results_report(path, tmp_path / "report")
    grid = (tmp_path / "report" / "results.md").read_text()
    assert "tune/" not in grid and "lr2e-3" not in grid  # the tuning runs stay out of the grid's tables
    # the precision comes from the records, whatever a title says
    assert f"; precision: float32 ({4 * len(preset.methods)} runs)." in grid
    tuning = (tmp_path / "report" / "tuning.md").read_text()
    assert f"- {preset.reference}: **lr2e-3**" in tuning


def test_another_reference_row_is_compared_with_every_row_and_an_unknown_one_is_named(tmp_path):
    import json

    from monai_hybrid.benchmark import PRESETS, write_results_report
    from monai_hybrid.benchmark.store import _jsonable

    preset = PRESETS["tiny"]  # rows hybrid (the preset's reference) and scratch
    site, budget = preset.target_sites[0], preset.budgets[0]
    runs = [
        _run(m, s, 0.5 + (0.1 if m == "scratch" else 0.0) + 0.01 * s, site=site, budget=budget.name)
        | {"key": f"{m}/{site}/{budget.key}/seed{s}"}
        for m in preset.methods
        for s in range(4)
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"preset": _jsonable(preset), "class_names": ["background", "a"], "runs": runs}))
    write_results_report(path, tmp_path / "report", reference="scratch")
    text = (tmp_path / "report" / "results.md").read_text()
    assert "| scratch minus |" in text and "| hybrid minus |" not in text
    assert "scratch is **ahead** of hybrid on Dice" in text  # +0.1 at every seed
    unknown = "reference 'hybrid_aug' is no fine-tuned row .* rows: \\['hybrid', 'scratch'\\]"
    with pytest.raises(ValueError, match=unknown):
        write_results_report(path, tmp_path / "other", reference="hybrid_aug")


def test_a_report_refuses_runs_of_two_machines(tmp_path):
    def run(seed: int, cpu: str) -> dict:
        machine = {"cpu": cpu, "cores": 2, "gpu": None, "torch": "2.13.0"}
        return {"key": f"hybrid/x/{seed}", "kind": "finetune", "method": "hybrid", "budget": "1 scan", "site": "x",
                "seed": seed, "replicate": seed, "mean_fg_dice": 0.5, "machine": machine}  # fmt: skip

    preset = {f.name: getattr(PRESETS["tiny"], f.name) for f in dataclasses.fields(PRESETS["tiny"])}
    saved = {"preset": json.loads(json.dumps(preset, default=lambda o: o.__dict__)), "class_names": ["b", "a"]}
    saved["runs"] = [run(0, "CPU one"), run(1, "CPU two")]
    (tmp_path / "results.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="holds runs of 2 machines"):
        write_results_report(tmp_path / "results.json", tmp_path / "report")
