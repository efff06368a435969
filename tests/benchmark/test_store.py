"""The results store refuses to resume a folder whose runs were made with other training settings."""

import dataclasses

import pytest

from monai_hybrid.benchmark.presets import PRESETS
from monai_hybrid.benchmark.store import ResultStore


def _store_one(tmp_path, preset):
    store = ResultStore(tmp_path, preset)
    store.record({"key": "pretrain/hybrid/seed0", "kind": "pretrain"})
    return store


def test_resume_with_the_same_settings_and_more_seeds(tmp_path):
    preset = PRESETS["tiny"]
    _store_one(tmp_path, preset)
    more = dataclasses.replace(preset, seeds=(0, 1, 2), workers=2)  # which runs, not how: resumable
    store = ResultStore(tmp_path, more)
    store.load()
    assert store.done("pretrain/hybrid/seed0") is not None


def test_resume_with_another_learning_rate_is_refused(tmp_path):
    preset = PRESETS["tiny"]
    _store_one(tmp_path, preset)
    other = dataclasses.replace(preset, learning_rate=preset.learning_rate * 2)
    with pytest.raises(ValueError, match=r"learning_rate.*another output folder"):
        ResultStore(tmp_path, other).load()


def test_a_pretraining_given_its_own_rate_later_refuses_only_the_runs_it_started(tmp_path):
    from monai_hybrid.benchmark import plan_grid
    from monai_hybrid.benchmark.runner import refuse_stale_runs

    preset = dataclasses.replace(PRESETS["tiny"], methods=("hybrid", "synth"))
    store = ResultStore(tmp_path, preset)
    for step in plan_grid(preset):  # every run done, as the runner records them
        pretrained = getattr(step, "pretrained", None)
        path = f"{tmp_path}/pretrain/{pretrained}/models/pretrain/model_final.pt" if pretrained else None
        store.record({"key": step.key, "kind": "finetune", "pretrained": path})
    refuse_stale_runs(plan_grid(preset), store)  # the same plan: resumable
    # hybrid_synth gets its own rate: a new row, none of its runs recorded, and the store resumes
    added = dataclasses.replace(preset, pretrain_learning_rates=(("hybrid_synth", 5e-4),))
    resumed = ResultStore(tmp_path, added)
    resumed.load()
    refuse_stale_runs(plan_grid(added), resumed)
    # synth gets its own rate after its fine-tunings ran from the preset's: refused, naming the run and both sources
    changed = dataclasses.replace(preset, pretrain_learning_rates=(("synth", 5e-4),))
    with pytest.raises(
        ValueError,
        match=r"synth/site_c_flair/scans1/seed0 \(started from synth_seed0, planned from "
        r"synth_lr5e-4_seed0\).*another output folder",
    ):
        refuse_stale_runs(plan_grid(changed), resumed)


def test_a_fine_tuning_recorded_with_other_overrides_or_overlays_is_refused(tmp_path):
    """The lesion site's class weights, added after its runs were recorded without them: resuming would count the old
    runs as done under the new recipe."""
    from monai_hybrid.benchmark.plan import FinetuneStep
    from monai_hybrid.benchmark.presets import Budget
    from monai_hybrid.benchmark.runner import refuse_stale_runs

    store = ResultStore(tmp_path, PRESETS["tiny"])
    site, budget = "site_c_flair_lesions", Budget(1, "scans")
    old = FinetuneStep("scratch/lesions/seed0", "scratch", budget, 0, None, site=site, overlays=("class_balanced",))
    # as runs.finetune records it: overrides always, overlays when there are some
    store.record(
        {"key": old.key, "kind": "finetune", "pretrained": None, "overrides": {}, "overlays": ["class_balanced"]}
    )
    refuse_stale_runs([old], store)  # the same settings (tuple and list alike): resumable
    weighted = dataclasses.replace(old, overrides={"class_weights": {"lesion": 50.0}})
    with pytest.raises(
        ValueError,
        match=r"scratch/lesions/seed0 \(recorded with .*\"overrides\": \{\}.*planned with "
        r".*\"lesion\": 50\.0.*move the stale records",
    ):
        refuse_stale_runs([weighted], store)
    with pytest.raises(ValueError, match="1 runs recorded with other settings"):
        refuse_stale_runs([dataclasses.replace(old, overlays=())], store)
