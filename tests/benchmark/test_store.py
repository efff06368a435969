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
