"""The compute axis: a preset pretrained K times longer, and the scaling report over stored compute points (its words
follow from the slope's interval; FLOPs from the records, or counted from the preset for older records)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from monai_hybrid.benchmark import PRESETS
from monai_hybrid.benchmark.presets import compute_point
from monai_hybrid.benchmark.scaling import load_point, measure_scaling, paired_trend, trend
from monai_hybrid.benchmark.scaling_report import SCALING, scaling_block
from monai_hybrid.benchmark.stats import Comparison, t_interval
from monai_hybrid.cli import main

ROOT = Path(__file__).resolve().parents[2]
BUDGETS = ["1 slice", "4 slices", "1 scan"]
MACHINE = {"cpu": "Test CPU", "cores": 2, "gpu": None, "torch": "2.13.0"}


def test_a_compute_point_scales_only_the_pretraining():
    cpu = PRESETS["cpu"]
    x4 = compute_point(cpu, 4)
    assert (x4.name, x4.pretrain_steps, x4.pretrain_epochs) == ("cpu_x4", 2400, 24)
    assert x4.pretrain_iterations_per_epoch == cpu.pretrain_iterations_per_epoch  # same epochs, more of them
    assert x4.pretrain_val_interval == 4 * cpu.pretrain_val_interval  # as many validations
    assert x4.oracle_steps == cpu.pretrain_steps and x4.finetune_steps == cpu.finetune_steps
    assert x4.run_settings() != cpu.run_settings()  # a results folder of one cannot resume as the other
    assert compute_point(cpu, 1) is cpu
    with pytest.raises(ValueError, match="'factor' must be a positive integer"):
        compute_point(cpu, 0)


def _point(tmp_path: Path, factor: int, gain: float, with_flops: bool = True, machine: dict = MACHINE) -> Path:
    """A stored cpu-preset benchmark pretrained ``factor`` times longer on ``machine``: hybrid's fresh Dice is
    supervised_aug's plus ``gain`` (with a seed wobble), 4 pretraining seeds, FLAIR."""
    preset = compute_point(PRESETS["cpu"], factor)
    MACHINE = machine  # noqa: N806 (the records' machine)
    runs = []
    for method in ("hybrid", "supervised_aug"):
        for seed in range(4):
            record = {"key": f"pretrain/{method}/seed{seed}", "kind": "pretrain", "method": f"{method}_seed{seed}",
                      "pretraining": method, "seed": seed, "wall_s": 60.0 * factor * (1 + seed), "machine": MACHINE,
                      "resumed": seed == 3}  # fmt: skip
            if with_flops:
                record.update(steps=preset.pretrain_steps, flops_per_step=6e9, train_flops=6e9 * preset.pretrain_steps)
            runs.append(record)
    for budget in BUDGETS:
        for seed in range(4):
            for method, g in (("hybrid", gain), ("supervised_aug", 0.0)):
                wobble = 0.004 * (1 if seed % 2 else -1) * (method == "hybrid")
                scores = {"mean_fg_dice": 0.6 + 0.01 * seed + g + wobble, "mean_hd95": 20.0, "fp_far_ml": 5.0}
                runs.append({"key": f"{method}/site_c_flair/{budget}/seed{seed}", "kind": "finetune", "method": method,
                             "budget": budget, "site": "site_c_flair", "seed": seed, "replicate": seed,
                             "eval_list": "test", **scores, "fresh": scores, "machine": MACHINE})  # fmt: skip
    fields = {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)}
    saved = {"preset": json.loads(json.dumps(fields, default=lambda o: o.__dict__)), "class_names": list("bcgw")}
    path = tmp_path / f"x{factor}{machine.get('cpu_generation') or ''}" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps({**saved, "runs": runs}))
    return path


def test_a_gap_that_grows_with_compute_is_called_so_and_extrapolated(tmp_path, capsys):
    paths = [_point(tmp_path, 1, 0.0), _point(tmp_path, 4, 0.03), _point(tmp_path, 16, 0.06)]
    assert main(["scaling", *map(str, paths), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "scaling.md").read_text()
    # wall time: the fastest run of either row and the mean of those that ran in one go (seed 3 was resumed: its time
    # is partial)
    assert "| cpu_x4 | 2400 | 1.44e+13 | records | 4.0 / 8.0 |" in report
    assert "At 1 slice, Dice (hybrid minus supervised_aug, series cpu): the gap **grows** in hybrid's favour" in report
    assert "1 decade on: +0.1" in report  # 0.05 per 0.6 decades: about +0.1 one decade past x16
    assert "paired by pretraining seed, 4 seeds at every point" in report
    # HD95 is the same in every run: the gap is 0 at every seed and point, and so is its slope
    assert (
        "At 1 slice, HD95 (hybrid minus supervised_aug, series cpu): **no trend** is measured (slope +0.0 mm" in report
    )
    assert (tmp_path / "out" / "scaling.png").stat().st_size > 10_000
    assert "Written:" in capsys.readouterr().out


def test_embed_puts_the_compact_account_in_a_page_with_the_figure_linked_from_it(tmp_path, capsys):
    paths = [_point(tmp_path, 1, 0.0), _point(tmp_path, 4, 0.03)]
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text(f"# Results\n\n{SCALING.begin}\n{SCALING.end}\n\nrest\n")
    out = tmp_path / "docs" / "results" / "scaling"
    assert main(["scaling", *map(str, paths), "--out", str(out), "--embed", str(page)]) == 0
    block = SCALING.read(page)
    assert block == scaling_block(measure_scaling(paths), "results/scaling/scaling.png")
    assert "![each row's score and the paired difference against compute](results/scaling/scaling.png)" in block
    assert "| cpu_x4 | 1.44e+13 | 4.0 | Test CPU (2 cores) (32 runs) | +0.030 [" in block
    assert f"raw results `{paths[0]}`, `{paths[1]}`" in block
    assert block.count("\n- At ") == 3  # a line per budget, on every metric
    assert "- At 1 slice, series cpu: Dice **grows** (slope +0.0" in block and "; HD95 **no trend** (slope" in block
    assert page.read_text().endswith("rest\n")
    # a page without the markers is named before anything is computed or written
    (tmp_path / "plain.md").write_text("# no markers\n")
    args = ["scaling", *map(str, paths), "--out", str(tmp_path / "o2"), "--embed", str(tmp_path / "plain.md")]
    assert main(args) == 1
    assert "must hold the line" in capsys.readouterr().err and not (tmp_path / "o2").exists()


def test_points_of_two_machines_make_two_series_each_with_its_own_trend(tmp_path):
    # one CPU name, two generations (a virtual machine names both "AMD EPYC"): a trend compares points of one machine
    zen4, zen5 = ({**MACHINE, "cpu": "AMD EPYC", "cpu_generation": f"family {f}, model 2"} for f in (25, 26))
    paths = [_point(tmp_path, 1, 0.0, machine=zen4), _point(tmp_path, 4, 0.0, machine=zen4)]
    paths += [_point(tmp_path, 1, 0.0, machine=zen5), _point(tmp_path, 16, 0.06, machine=zen5)]
    scaling = measure_scaling(paths)
    assert sorted(scaling.label.values()) == [  # both start at the cpu preset: named by their machines
        "cpu on AMD EPYC (family 25, model 2; 2 cores)",
        "cpu on AMD EPYC (family 26, model 2; 2 cores)",
    ]
    words = [s for (metric, key, b), s in scaling.sentences.items() if metric == "mean_fg_dice" and b == "1 slice"]
    assert sorted("**grows**" in w for w in words) == [False, True]  # flat on one machine, growing on the other
    assert sum("**no trend**" in w for w in words) == 1
    # a point of one machine alone is no series: the other machine's points do not complete it
    with pytest.raises(ValueError, match="is the only point of its series"):
        measure_scaling(paths[:3])


def test_flops_of_older_records_are_counted_from_the_preset(tmp_path):
    point = load_point(_point(tmp_path, 1, 0.0, with_flops=False), "hybrid", "supervised_aug", BUDGETS)
    assert point.counted == "preset" and math.isclose(point.flops, 6.14e9 * 600, rel_tol=0.01)


def test_one_point_is_no_curve(tmp_path, capsys):
    assert main(["scaling", str(_point(tmp_path, 1, 0.0)), "--out", str(tmp_path / "o")]) == 1
    assert "at least two compute points" in capsys.readouterr().err


def test_trend_words_follow_the_slope_interval():
    def c(mean: float, half: float) -> Comparison:
        return Comparison(mean, mean - half, mean + half, 3, 4, 4, "level")

    flat = trend([12.0, 13.0, 14.0], [c(0.0, 0.02), c(0.001, 0.02), c(-0.001, 0.02)])
    assert flat.word == "no trend" and flat.slope_low < 0 < flat.slope_high
    down = trend([12.0, 13.0], [c(0.05, 0.005), c(-0.05, 0.005)])
    assert down.word == "shrinks" and down.at[0][0] == 1 and down.at[0][1] < -0.1
    # for a lower-is-better metric a falling difference is a gain
    assert trend([12.0, 13.0], [c(5.0, 0.5), c(-5.0, 0.5)], higher_is_better=False).word == "grows"
    assert trend([12.0], [c(0.0, 0.01)]).word == "too few points"


def test_the_trend_pairs_the_points_seed_by_seed():
    x = [12.0, 12.6]
    # seeds differ a lot (their labelled cases), but each gains 0.02 from x1 to x4: paired, a clear trend
    per_seed = [{0: 0.00, 1: -0.10, 2: 0.08, 3: 0.03}, {0: 0.02, 1: -0.08, 2: 0.10, 3: 0.05}]
    paired = paired_trend(x, per_seed)
    assert paired.word == "grows" and math.isclose(paired.slope, 0.02 / 0.6) and paired.basis.startswith("paired")

    def c(values: list[float]) -> Comparison:
        mean, low, high = t_interval(values)
        return Comparison(mean, low, high, 0, len(values), len(values), "level")

    # the same numbers taken as independent points: the seeds' spread hides it
    assert trend(x, [c(list(d.values())) for d in per_seed]).word == "no trend"
    # extrapolated one decade past x4, each seed's own line: 0.02 / 0.6 per decade on from its x4 value
    assert math.isclose(paired.at[0][1], 0.0225 + 0.02 / 0.6, rel_tol=1e-9)  # 0.0225: the mean at x4
    # seeds that do not recur at every point cannot pair: the caller falls back to the independent points
    assert paired_trend(x, [{0: 0.0, 1: 0.1}, {1: 0.1, 2: 0.0}]) is None
    assert paired_trend([12.0, 12.0], per_seed) is None


def test_a_point_alone_in_its_series_is_refused(tmp_path, capsys):
    # the bundle preset is another network: its point is no point of the cpu series
    bundle = _point(tmp_path, 1, 0.0)
    saved = json.loads(bundle.read_text())
    saved["preset"]["channels"] = [16, 32, 64, 64]
    bundle.write_text(json.dumps(saved))
    paths = [bundle, _point(tmp_path, 4, 0.0), _point(tmp_path, 16, 0.0)]
    assert main(["scaling", *map(str, paths), "--out", str(tmp_path / "o")]) == 1
    assert "is the only point of its series" in capsys.readouterr().err


def test_the_reference_is_a_row_and_must_be_pretrained(tmp_path):
    path = _point(tmp_path, 1, 0.0)
    with pytest.raises(ValueError, match="'scratch' is not a pretrained row"):
        load_point(path, "scratch", "supervised_aug", BUDGETS)


def test_the_results_page_holds_what_the_generator_makes_of_the_stored_points():
    page = ROOT / "docs" / "results.md"
    block = SCALING.read(page)
    assert block is not None, "docs/results.md has no scaling block"
    named = re.search(r"raw results ((?:`[^`]+`(?:, )?)+)\.", block)
    assert named, "the scaling block names no results files"
    paths = re.findall(r"`([^`]+)`", named.group(1))
    measured = measure_scaling([ROOT / p for p in paths])
    shown = {str(ROOT / p): p for p in paths}
    assert block == scaling_block(measured, "results/scaling/scaling.png", shown_as=shown)
    assert (ROOT / "docs" / "results" / "scaling" / "scaling.png").is_file()
