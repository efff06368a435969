"""The next-scan score with a real (tiny) hybrid model, through the bundle's inference config."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from monai_hybrid.active_learning import BundleScorer, rank_by_disagreement
from monai_hybrid.bundle import write_bundle

pytestmark = pytest.mark.slow


def test_bundle_scorer_ranks_the_target_scans_with_the_served_model(pretrained, tmp_path):
    bundle = write_bundle(tmp_path / "bundle")
    shutil.copytree(pretrained / "models" / "pretrain", bundle / "models", dirs_exist_ok=True)
    shutil.copy(bundle / "models" / "model_final.pt", bundle / "models" / "model.pt")
    site = pretrained / "demo_data" / "site_c_flair"
    scans = [str(site / e["image"]) for e in json.loads((site / "datalist.json").read_text())["training"]]
    scorer = BundleScorer(str(bundle))
    image = scorer.load(scans[0])
    assert image.ndim == 5 and image.shape[:2] == (1, 1)  # (1, C, H, W, D): slices are windowed by the inferer
    ranked = rank_by_disagreement(scans, scorer.load, scorer.score)
    assert sorted(name for name, _ in ranked) == sorted(scans)
    assert all(math.isfinite(score) and score >= 0 for _, score in ranked)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
