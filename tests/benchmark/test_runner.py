"""The benchmark runner end to end on a tiny grid: one mode and scratch, one budget, one seed, the tiny phantom."""

from __future__ import annotations

import dataclasses
import json

import mlflow
import pytest

from monai_hybrid.benchmark import (
    PRESETS,
    BenchmarkPreset,
    BenchmarkRunner,
    executor,
    markdown_table,
    plot_dice,
    write_grid_report,
)
from tests.conftest import three_class_datalist

TINY = PRESETS["tiny"]


@pytest.mark.slow
def _on_the_tiny_phantom(out, preset, phantom, **kwargs) -> BenchmarkRunner:
    """A runner on the tiny phantom's source and FLAIR datalists, quiet and untracked unless told."""
    options = {"progress": False, "track": False, **kwargs}
    sites = {"source_datalist": phantom / "site_a_t1w" / "datalist.json"}
    sites["target_datalist"] = phantom / "site_c_flair" / "datalist.json"
    return BenchmarkRunner(out, preset, **sites, **options)


def test_tiny_grid_end_to_end_and_resume(tiny_phantom, tmp_path, monkeypatch):
    root, _ = tiny_phantom
    kwargs = dict(
        source_datalist=root / "site_a_t1w" / "datalist.json",
        target_datalist=root / "site_c_flair" / "datalist.json",
        progress=False,
    )
    runs = BenchmarkRunner(tmp_path, TINY, **kwargs).run()
    keys = [r["key"] for r in runs]
    # pretraining first, then what needs none, then what starts from a pretrained model
    assert keys == [
        "pretrain/hybrid/seed0",
        "oracle/target/all/seed0",
        "scratch/target/scans1/seed0",
        "zero_shot/hybrid/target/seed0",
        "hybrid/target/scans1/seed0",
    ]
    hybrid = next(r for r in runs if r["key"] == "hybrid/target/scans1/seed0")
    assert 0.0 <= hybrid["mean_fg_dice"] <= 1.0 and len(hybrid["chosen"]) == 1 and hybrid["wall_s"] > 0
    assert {"dice_csf", "dice_grey_matter", "dice_white_matter", "mean_hd95", "n_missed"} <= set(hybrid)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["key"] for r in saved["runs"]] == keys
    # the compute axis: the pretraining's steps and the counted FLOPs of one of its steps
    pretraining = next(r for r in runs if r["kind"] == "pretrain")
    assert pretraining["steps"] == TINY.pretrain_steps and pretraining["flops_per_step"] > 0
    assert pretraining["train_flops"] == pretraining["flops_per_step"] * TINY.pretrain_steps
    # every record names its machine and precision: verdicts and wall times pair runs of one machine
    assert all(r["machine"]["cores"] >= 1 and r["machine"]["cpu"] and r["precision"] == "float32" for r in runs)

    # a second run finds everything done and runs nothing
    def no_run(ctx, step):
        raise AssertionError(f"{step.key} ran again")

    monkeypatch.setattr(executor, "run_step", no_run)
    assert [r["key"] for r in BenchmarkRunner(tmp_path, TINY, **kwargs).run()] == keys

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("monai-hybrid-benchmark-tiny")
    assert len(client.search_runs(experiment.experiment_id)) == len(keys)

    table = markdown_table(runs, ["1 scan"])
    assert table.splitlines()[0] == "| method | 1 scan | bound |" and "| hybrid | " in table
    oracle = next(line for line in table.splitlines() if line.startswith("| oracle"))
    assert oracle.split("|")[2].strip() == "" and "(n = 1)" in oracle.split("|")[3]  # its value in the bound column
    plot_dice(runs, ["1 scan"], tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 5000


@pytest.mark.slow
def test_tiny_grid_in_two_worker_processes(tiny_phantom, tmp_path):
    root, _ = tiny_phantom
    runner = _on_the_tiny_phantom(tmp_path, TINY, root, workers=2)
    runs = runner.run()
    keys = [r["key"] for r in runs]
    # what starts from the pretrained model ends after it; the oracle and scratch runs need not wait for it
    first = keys.index("pretrain/hybrid/seed0")
    assert first < min(keys.index("zero_shot/hybrid/target/seed0"), keys.index("hybrid/target/scans1/seed0"))
    assert sorted(keys) == sorted(
        [
            "pretrain/hybrid/seed0",
            "zero_shot/hybrid/target/seed0",
            "oracle/target/all/seed0",
            "hybrid/target/scans1/seed0",
            "scratch/target/scans1/seed0",
        ]
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["key"] for r in saved["runs"]] == keys
    assert all(0.0 <= r["mean_fg_dice"] <= 1.0 for r in runs if r["kind"] != "pretrain")


def test_plan_orders_steps_after_what_they_need(tmp_path):
    preset = BenchmarkPreset(
        **{
            **TINY.__dict__,
            "name": "plan",
            "methods": ("hybrid", "supervised", "scratch"),
            "seeds": (0, 1, 2),
            "pretrain_seeds": (0, 1),
            "oracle_seeds": (0,),
            "long_control": ("hybrid",),
        }
    )
    steps = BenchmarkRunner(tmp_path, preset).plan()
    keys = [s.key for s in steps]
    assert [k for k in keys if k.startswith("oracle")] == ["oracle/site_c_flair/all/seed0"]  # oracle_seeds, not seeds
    assert keys[:4] == [
        "pretrain/hybrid/seed0",
        "pretrain/hybrid/seed1",
        "pretrain/supervised/seed0",
        "pretrain/supervised/seed1",
    ]
    for i, step in enumerate(steps):
        assert all(keys.index(need) < i for need in step.needs), step.key
    # fine-tuning seed s starts from pretraining seed s % 2: the spread includes pretraining
    assert next(s for s in steps if s.key == "supervised/site_c_flair/scans1/seed1").needs == (
        "pretrain/supervised/seed1",
    )
    assert next(s for s in steps if s.key == "supervised/site_c_flair/scans1/seed2").needs == (
        "pretrain/supervised/seed0",
    )
    assert next(s for s in steps if s.key == "scratch/site_c_flair/scans1/seed1").needs == ()
    control = next(s for s in steps if s.key == "hybrid_long/site_c_flair/scans1/seed0")
    assert control.long and control.method == "hybrid_long"


def test_preset_rejects_empty_oracle_seeds_and_empty_batches():
    with pytest.raises(ValueError, match="'oracle_seeds'"):
        BenchmarkPreset(**{**TINY.__dict__, "oracle_seeds": ()})
    with pytest.raises(ValueError, match="'finetune_samples_per_volume'"):
        BenchmarkPreset(**{**TINY.__dict__, "finetune_samples_per_volume": 0})
    with pytest.raises(ValueError, match="'pretrain_epochs' must be a positive integer"):
        BenchmarkPreset(**{**TINY.__dict__, "pretrain_epochs": 0})
    with pytest.raises(ValueError, match="unknown methods"):
        BenchmarkPreset(**{**TINY.__dict__, "methods": ("hybrid", "nnunet")})


def test_worker_stops_when_the_benchmark_process_is_gone():
    from monai_hybrid.benchmark.executor import _exit_when_orphaned

    codes = []
    _exit_when_orphaned(parent_pid=-1, interval=0.01, exit=codes.append)  # -1 is never this process's parent
    assert codes == [1]


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="'workers' must be a positive integer"):
        BenchmarkRunner(tmp_path, TINY, workers=0)


@pytest.mark.slow
def test_tiny_grid_on_user_datalists_with_three_classes(tiny_phantom, tmp_path):
    root, _ = tiny_phantom
    source = three_class_datalist(root, "site_a_t1w", tmp_path / "source")
    target = three_class_datalist(root, "site_c_flair", tmp_path / "target")
    preset = BenchmarkPreset(**{**TINY.__dict__, "methods": ("hybrid",), "oracle_seeds": (0,)})
    runs = BenchmarkRunner(
        tmp_path / "bench", preset, source_datalist=source, target_datalist=target, progress=False, track=False
    ).run()
    hybrid = next(r for r in runs if r["key"] == "hybrid/target/scans1/seed0")
    assert {"dice_csf", "dice_tissue"} <= set(hybrid) and "dice_grey_matter" not in hybrid
    saved = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert saved["class_names"] == ["background", "csf", "tissue"]
    assert not (tmp_path / "bench" / "phantom").exists()  # user data only


def test_datalists_that_label_different_classes_are_refused(tiny_phantom, tmp_path):
    root, _ = tiny_phantom
    target = three_class_datalist(root, "site_c_flair", tmp_path / "target")
    runner = BenchmarkRunner(
        tmp_path / "bench", TINY, source_datalist=root / "site_a_t1w" / "datalist.json", target_datalist=target
    )
    with pytest.raises(ValueError, match="label different classes.*--class-names"):
        runner.run()


@pytest.mark.slow
def test_tiny_grid_of_the_baselines_a_user_would_pick(tiny_phantom, tmp_path):
    root, _ = tiny_phantom
    preset = BenchmarkPreset(
        **{
            **TINY.__dict__,
            "methods": ("hybrid_target", "supervised_aug", "synth"),
            "zero_shot": ("synth",),
            "long_control": ("synth",),
        }
    )
    runs = _on_the_tiny_phantom(tmp_path, preset, root).run()
    by_key = {r["key"]: r for r in runs}
    assert by_key["pretrain/hybrid_target/seed0"]["target_unlabeled"] is True
    assert by_key["pretrain/supervised_aug/seed0"]["overlays"] == ["intensity_augmentation"]
    assert by_key["pretrain/synth/seed0"]["overlays"] == ["synthesis"]
    assert by_key["pretrain/hybrid_target/seed0"]["overlays"] == []
    assert by_key["zero_shot/synth/target/seed0"]["method"] == "zero-shot (synth)"
    for key in ("hybrid_target/target/scans1/seed0", "supervised_aug/target/scans1/seed0", "synth/target/scans1/seed0"):
        assert 0.0 <= by_key[key]["mean_fg_dice"] <= 1.0, key
    assert by_key["synth_long/target/scans1/seed0"]["steps"] == TINY.finetune_steps * TINY.long_factor
    report = write_grid_report(runs, ["1 scan"], ["background", "csf", "grey_matter", "white_matter"], tmp_path, "t")
    assert "| synth |" in report and (tmp_path / "pretraining_curves.png").is_file()
    assert "synth_long minus" in (tmp_path / "results.md").read_text()


def test_a_saved_preset_reads_back():
    saved = json.loads(json.dumps(dataclasses.asdict(TINY)))
    assert BenchmarkPreset.from_json(saved) == TINY


def test_a_part_adds_pretraining_seeds_without_changing_the_runs_already_planned():
    from monai_hybrid.benchmark import Budget, GridPart, plan_grid

    more = GridPart(
        "more", ("site_c_flair",), (Budget(1, "slices"),), ("hybrid",), (4, 5, 6, 7), pretrain_seeds=(0, 1, 2, 3)
    )
    preset = dataclasses.replace(TINY, pretrain_seeds=(0, 1), seeds=(0, 1), parts=(more,))
    steps = {s.key: s for s in plan_grid(preset)}
    assert [k for k in steps if k.startswith("pretrain/")] == [f"pretrain/hybrid/seed{p}" for p in range(4)]
    # the main part's runs keep their pretraining seed (s % 2); the part's seed s starts from pretraining seed s % 4
    assert steps["hybrid/site_c_flair/scans1/seed1"].pretrained == "hybrid_seed1"
    assert steps["hybrid/site_c_flair/scans1/seed1"].replicate == 1
    assert [steps[f"hybrid/site_c_flair/slices1/seed{s}"].pretrained for s in (4, 5, 6, 7)] == [
        f"hybrid_seed{p}" for p in (0, 1, 2, 3)
    ]
    assert steps["hybrid/site_c_flair/slices1/seed6"].replicate == 2
    # the zero-shot bounds stay those of the preset's pretraining seeds
    assert sorted(k for k in steps if k.startswith("zero_shot/")) == [
        "zero_shot/hybrid/site_c_flair/seed0",
        "zero_shot/hybrid/site_c_flair/seed1",
    ]
    saved = json.loads(json.dumps(dataclasses.asdict(preset)))
    assert BenchmarkPreset.from_json(saved) == preset
    # a run that two parts start from different pretraining seeds is refused, naming it
    clash = GridPart("clash", ("site_c_flair",), (Budget(1, "scans"),), ("hybrid",), (1,), pretrain_seeds=(0, 2))
    with pytest.raises(ValueError, match="hybrid/site_c_flair/scans1/seed1 is named by two parts"):
        plan_grid(dataclasses.replace(preset, parts=(more, clash)))
    with pytest.raises(ValueError, match="'pretrain_seeds' must be None or non-negative integers"):
        GridPart("empty", ("site_c_flair",), (Budget(1, "scans"),), ("hybrid",), (1,), pretrain_seeds=())


def test_a_pretraining_runs_at_the_learning_rate_its_tuning_chose():
    from monai_hybrid.benchmark import plan_grid, plan_tuning

    preset = dataclasses.replace(
        TINY, methods=("hybrid", "synth"), learning_rate=2e-3, pretrain_learning_rates=(("synth", 5e-4),)
    )
    steps = {s.key: s for s in plan_grid(preset)}
    # its own runs, named with the rate, so that a folder never mixes two rates under one name
    assert steps["pretrain/synth_lr5e-4/seed0"].overrides["learning_rate"] == 5e-4
    assert "learning_rate" not in steps["pretrain/hybrid/seed0"].overrides  # the preset's rate
    assert steps["synth/site_c_flair/scans1/seed0"].needs == ("pretrain/synth_lr5e-4/seed0",)
    assert steps["synth/site_c_flair/scans1/seed0"].pretrained == "synth_lr5e-4_seed0"
    assert "zero_shot/synth_lr5e-4/site_c_flair/seed0" in steps
    # the tuning variant at the chosen rate is the grid's pretraining, run once for both
    tuning = {s.key: s for s in plan_tuning(preset)}
    assert "pretrain/synth_lr5e-4/seed0" in tuning and "pretrain/hybrid/seed0" in tuning
    assert tuning["tune/synth/lr2e-3/site_c_flair/slices1/seed0"].needs == ("pretrain/tune_synth_2/seed0",)
    saved = json.loads(json.dumps(dataclasses.asdict(preset)))
    assert BenchmarkPreset.from_json(saved) == preset
    with pytest.raises(ValueError, match="'pretrain_learning_rates' must be"):
        dataclasses.replace(TINY, pretrain_learning_rates=(("nnunet", 1e-3),))
    with pytest.raises(ValueError, match="'pretrain_learning_rates' must be one pair per pretraining"):
        dataclasses.replace(TINY, pretrain_learning_rates=(("synth", 1e-3), ("synth", 5e-4)))


def _two_seed_preset() -> BenchmarkPreset:
    return dataclasses.replace(
        TINY,
        name="parts",
        methods=("hybrid", "scratch"),
        seeds=(0, 1, 2, 3),
        pretrain_seeds=(0, 1),
        oracle_seeds=(0,),
        long_control=("hybrid",),
    )


def test_a_benchmark_runs_in_parts_one_set_of_pretraining_seeds_after_another(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from monai_hybrid.benchmark import plan as plan_module
    from monai_hybrid.benchmark import runner as runner_module

    preset = _two_seed_preset()
    steps = BenchmarkRunner(tmp_path, preset).plan()
    first, second = (plan_module.of_replicates(steps, [r], preset.pretrain_seeds) for r in (0, 1))
    # the parts split the plan: every run in exactly one, with every run it needs
    assert sorted(s.key for s in first + second) == sorted(s.key for s in steps)
    for part in (first, second):
        keys = {s.key for s in part}
        assert all(set(s.needs) <= keys for s in part)
    second_keys = {s.key for s in second}
    assert {"pretrain/hybrid/seed1", "hybrid/site_c_flair/scans1/seed3", "scratch/site_c_flair/scans1/seed1"} <= (
        second_keys
    )
    assert "oracle/site_c_flair/all/seed0" not in second_keys and "hybrid/site_c_flair/scans1/seed2" not in second_keys

    # the runner runs one part into the folder, names what is left, and the next part resumes it
    data = SimpleNamespace(source="s.json", targets={}, class_names=("background", "a"), fresh={}, site_classes={})
    monkeypatch.setattr(runner_module, "prepare_data", lambda *a, **k: data)
    ran: list[str] = []

    def fake_execute(todo, ctx, record, workers, on_done):
        for step in todo:
            ran.append(step.key)
            record({"key": step.key})

    monkeypatch.setattr(runner_module, "execute", fake_execute)
    checkpoint = tmp_path / "model_final.pt"
    checkpoint.touch()  # a recorded pretraining run counts as done when its checkpoint is there
    monkeypatch.setattr(runner_module.RunContext, "pretrained", lambda self, name: checkpoint)
    part = BenchmarkRunner(tmp_path, preset, track=False, progress=False, replicates=[1])
    part.run()
    assert sorted(ran) == sorted(second_keys) and sorted(part.left) == sorted(s.key for s in first)
    ran.clear()
    last = BenchmarkRunner(tmp_path, preset, track=False, progress=False, replicates=[0, 1])
    last.run()
    assert sorted(ran) == sorted(s.key for s in first) and last.left == []


def test_replicates_must_be_pretraining_seeds_of_the_preset(tmp_path):
    with pytest.raises(ValueError, match=r"'replicates' must name pretraining seeds of the preset \(\[0, 1\]\)"):
        BenchmarkRunner(tmp_path, _two_seed_preset(), replicates=[2])
    with pytest.raises(ValueError, match="'replicates'"):
        BenchmarkRunner(tmp_path, _two_seed_preset(), replicates=[])
