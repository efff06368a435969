from __future__ import annotations

import json

from tests.bundle.conftest import run_config


def test_sample_bundle_run(bundle_root):
    run_config("pretrain", ["pretrain.yaml"], bundle_root)
    run_config("sample", ["pretrain.yaml", "sample.yaml"], bundle_root, num_samples=2, num_inference_steps=3)
    datalist = json.loads((bundle_root / "eval" / "samples" / "datalist.json").read_text())
    assert len(datalist["training"]) == 2
