"""The lesion benchmark: a lesion site (``<site>_lesions``) fine-tunes with one more class and a grown mask head, is
scored with the lesion metrics, has no zero-shot bound, and gets a report of its own with the tissue-only twin."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from monai_hybrid.benchmark import PRESETS, BenchmarkRunner, Budget, GridPart, prepare_data, write_results_report
from monai_hybrid.benchmark import data as benchmark_data
from monai_hybrid.benchmark.lesion_report import TISSUE_ONLY, _aims, lesion_records
from monai_hybrid.benchmark.plan import LESION_OVERRIDES, ZeroShotStep, plan_grid
from monai_hybrid.data.phantom import SUMMARY_FILE, generate_phantom
from tests.conftest import tiny_config

ONE_SCAN = Budget(1, "scans")
LESION_PARTS = (
    GridPart("lesions", ("site_c_flair_lesions",), (ONE_SCAN,), ("hybrid", "scratch"), (0,)),
    GridPart("lesions_tissue", ("site_c_flair",), (ONE_SCAN,), ("hybrid",), (0,)),
)


@pytest.fixture()
def tiny_phantoms(monkeypatch):
    """The benchmark's phantoms (with and without lesions) at the tiny phantom's sizes."""

    def ensure(out_dir, seed=0, resolution=2.0, lesions=False, workers=None, progress=True, raw_sites=False):
        out = Path(out_dir)
        if not (out / SUMMARY_FILE).is_file():
            generate_phantom(out, tiny_config(seed, lesions), workers=1, progress=False)
        return out

    monkeypatch.setattr(benchmark_data, "ensure_phantom", ensure)


def test_the_plan_gives_a_lesion_site_no_zero_shot_bound():
    steps = plan_grid(dataclasses.replace(PRESETS["cpu"]), ("lesions",))
    assert not [s for s in steps if isinstance(s, ZeroShotStep) and s.site.endswith("_lesions")]
    keys = {s.key for s in steps}
    assert "oracle/site_c_flair_lesions/all/seed0" in keys and "synth/site_c_flair_lesions/scans5/seed3" in keys


def test_a_lesion_site_of_no_clean_target_site_is_refused(tiny_phantoms, tmp_path):
    for site in ("site_c_flair_raw_lesions", "site_x_lesions"):
        with pytest.raises(ValueError, match="not target sites of the phantom"):
            prepare_data(tmp_path, 6.0, [site], progress=False)


@pytest.mark.slow
def test_tiny_lesion_grid_grows_the_head_scores_lesions_and_reports_them(tiny_phantoms, tmp_path):
    preset = dataclasses.replace(PRESETS["tiny"], parts=LESION_PARTS)
    runner = BenchmarkRunner(tmp_path, preset, parts=("lesions", "lesions_tissue"), progress=False, track=False)
    runs = runner.run()
    keys = {r["key"] for r in runs}
    assert "hybrid/site_c_flair_lesions/scans1/seed0" in keys and "hybrid/site_c_flair/scans1/seed0" in keys
    assert not any(k.startswith("zero_shot/") and "lesions" in k for k in keys)
    lesion = next(r for r in runs if r["key"] == "hybrid/site_c_flair_lesions/scans1/seed0")
    assert {"lesion_dice", "lesion_f1", "lesion_recall", "lesion_avd_percent", "dice_lesion"} <= set(lesion)
    clean = next(r for r in runs if r["key"] == "hybrid/site_c_flair/scans1/seed0")
    assert "lesion_dice" not in clean and "dice_lesion" not in clean
    # every run at the lesion site, the oracle too, samples its slices class by class and weights the lesion class;
    # the clean site as always
    at_lesion_site = [r for r in runs if r.get("site") == "site_c_flair_lesions"]
    assert all(r["overlays"] == ["class_balanced"] for r in at_lesion_site)
    assert all(
        r["overrides"] == {"class_weights": {"lesion": LESION_OVERRIDES["class_weights"]["lesion"]}}
        for r in at_lesion_site
    )
    assert "overlays" not in clean and clean["overrides"] == {}
    model_dir = tmp_path / "runs" / "hybrid_site_c_flair_lesions_scans1_seed0" / "models"
    settings = json.loads((model_dir / "model_settings.json").read_text())
    assert settings["class_names"][-1] == "lesion" and len(settings["class_names"]) == 5
    transfer = json.loads((model_dir / "weight_transfer.json").read_text())
    assert "lesion" in json.dumps(transfer["mask_head"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["site_classes"]["site_c_flair_lesions"][-1] == "lesion"

    write_results_report(tmp_path / "results.json", tmp_path / "report")
    text = (tmp_path / "report" / "results_lesions.md").read_text()
    assert "Lesion Dice" in text and "hybrid minus" in text and "hybrid (tissue only)" in text
    assert (tmp_path / "report" / "lesions_vs_budget_site_c_flair_lesions.png").is_file()
    assert "site_c_flair_lesions" not in (tmp_path / "report" / "results.md").read_text()


def _run(method: str, site: str, seed: int, **metrics: float) -> dict:
    return {"kind": "finetune", "method": method, "site": site, "budget": "1 scan", "seed": seed, **metrics}


def test_the_tissue_only_twin_pairs_by_seed_and_the_aims_follow_the_numbers():
    tissue = {"dice_csf": 0.8, "dice_grey_matter": 0.7, "dice_white_matter": 0.9}
    runs = []
    for seed in range(4):
        runs.append({**_run("hybrid", "s_lesions", seed, lesion_dice=0.75 + 0.01 * seed, **tissue), "replicate": seed})
        runs.append({**_run("scratch", "s_lesions", seed, lesion_dice=0.30, **tissue), "replicate": seed})
        twin_tissue = {**tissue, "dice_white_matter": 0.9 + 0.003 * (seed % 2)}
        runs.append({**_run("hybrid", "s", seed, **twin_tissue), "replicate": seed})
        runs.append({**_run("scratch", "s", seed, **tissue), "replicate": seed})  # not a twin: another row
    records = lesion_records(runs, ["csf", "grey_matter", "white_matter"], "hybrid")
    twin = TISSUE_ONLY.format(reference="hybrid")
    assert sorted({r["method"] for r in records}) == ["hybrid", twin, "scratch"]
    assert all(r["site"] == "s_lesions" for r in records)
    first = next(r for r in records if r["method"] == "hybrid" and r["seed"] == 0)
    assert math.isclose(first["tissue_dice"], 0.8)
    aims = "\n".join(_aims(records, "hybrid", "s_lesions", ["1 scan"]))
    assert "lesion Dice of hybrid at 1 scan at least 0.70: 0.765 (4 runs), **met**" in aims
    assert "ahead of scratch on lesion Dice at 1 scan" in aims and "**ahead**, **met**" in aims
    # the twin's tissue Dice is at most 0.001 higher: within 0.01
    assert "tissue Dice within 0.01 of the tissue-only model at 1 scan" in aims
    assert aims.rstrip().endswith("**met**.")


def test_report_budgets_run_slices_then_scans_by_count_so_the_aims_read_the_largest():
    """The lesion part's 3 scans come after the other parts' 5 scans in the preset; the columns (and the aims,
    which read the last column) must still go 1, 3, 5 scans."""
    from monai_hybrid.benchmark.records import budget_order

    names = ["1 slice", "4 slices", "1 scan", "16 slices", "5 scans", "3 scans", "all scans"]
    assert sorted(names, key=budget_order) == [
        "1 slice",
        "4 slices",
        "16 slices",
        "1 scan",
        "3 scans",
        "5 scans",
        "all scans",
    ]
