"""The fresh test cohort: generated with a phantom seed no development run used, its subjects differ from every
development subject, and the seed is recorded."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_hybrid.benchmark.data import DEVELOPMENT_SEED, _fresh_cohort, prepare_data
from monai_hybrid.benchmark.presets import FRESH_SEED, PRESETS


def _labels(datalist: str, keys: tuple[str, ...]) -> list[np.ndarray]:
    data = json.loads(open(datalist).read())
    root = datalist.rsplit("/", 1)[0]
    return [np.asarray(nib.load(f"{root}/{e['label']}").dataobj) for k in keys for e in data.get(k, [])]


def test_fresh_cohort_subjects_differ_from_every_development_subject(tiny_phantom, tmp_path):
    root, summary = tiny_phantom
    resolution = summary["config"]["resolution"]
    assert summary["config"]["seed"] == DEVELOPMENT_SEED != FRESH_SEED
    fresh = _fresh_cohort(tmp_path, resolution, FRESH_SEED, ["site_c_flair"], progress=False)
    fresh_labels = _labels(fresh["site_c_flair"], ("test",))
    development = _labels(str(root / "site_c_flair" / "datalist.json"), ("training", "validation", "test"))
    assert len(fresh_labels) == 10 and development
    for label in fresh_labels:
        assert not any(label.shape == d.shape and np.array_equal(label, d) for d in development)
    written = json.loads((tmp_path / "phantom_fresh" / "summary.json").read_text())
    assert written["config"]["seed"] == FRESH_SEED
    # every site keeps its index (its subjects' streams depend on it): the whole phantom, test subjects only
    assert [s["name"] for s in written["sites"]] == [
        "site_a_t1w",
        "site_b_t2w",
        "site_c_flair",
        "site_d_pd",
        "site_b_t2w_raw",
        "site_c_flair_raw",
        "site_d_pd_raw",
    ]
    assert _fresh_cohort(tmp_path, resolution, FRESH_SEED, ["site_d_pd_raw"], progress=False)  # reused, not redone
    with pytest.raises(ValueError, match="fresh test cohort made with other settings"):
        _fresh_cohort(tmp_path, resolution, FRESH_SEED + 1, ["site_c_flair"], progress=False)
    assert all(PRESETS[name].fresh_seed in (None, FRESH_SEED) for name in PRESETS)


def test_the_development_seed_is_refused_as_fresh(tiny_phantom, tmp_path):
    root, _ = tiny_phantom
    with pytest.raises(ValueError, match="seed of the development phantom"):
        prepare_data(
            tmp_path,
            6.0,
            ["site_c_flair"],
            source_datalist=root / "site_a_t1w" / "datalist.json",
            fresh_seed=DEVELOPMENT_SEED,
            progress=False,
        )
