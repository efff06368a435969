"""Run the bundle's configs on the tiny phantom with tiny settings, in-process through MONAI's ConfigWorkflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monai_hybrid.bundle import run_bundle

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "hybrid_brain_mri_segmentation"

#: Overrides that make every config tiny: 6 mm phantom, 32 x 32 slices, a 2-level network, 2 iterations.
TINY_OVERRIDES = {
    "network_def#channels": [8, 16],
    "network_def#attention_levels": [False, True],
    "network_def#num_head_channels": 8,
    "network_def#norm_num_groups": 8,
    "num_train_timesteps": 20,
    "roi_size_2d": [32, 32],
    "roi_size_3d": [32, 32, 32],
    "pixdim": [6.0, 6.0, 6.0],
    "batch_volumes": 2,
    "samples_per_volume": 2,
    "iterations_per_epoch": 2,
    "epochs": 1,
    "val_interval": 1,
    "checkpoint_every": 1,
    "generate_demo_data": False,
    "validate#handlers#0#timesteps": [5, 15],
}


#: The same for inference.yaml and its evaluate.yaml overlay.
TINY_INFERENCE_OVERRIDES = {
    "network_def#channels": [8, 16],
    "network_def#attention_levels": [False, True],
    "network_def#num_head_channels": 8,
    "network_def#norm_num_groups": 8,
    "roi_size_2d": [32, 32],
    "roi_size_3d": [32, 32, 32],
    "pixdim": [6.0, 6.0, 6.0],
}


def run_config(run_id: str, configs: list[str], bundle_root: Path, **overrides):
    """Run ``run_id`` of the bundle's ``configs`` with ``bundle_root`` as the run's folder."""
    tiny = TINY_INFERENCE_OVERRIDES if configs[0] == "inference.yaml" else TINY_OVERRIDES
    return run_bundle(run_id, configs, bundle_root, BUNDLE, **{**tiny, **overrides})


def cause(err: BaseException, kind: type) -> BaseException:
    """The first exception of type ``kind`` in the chain of ``err`` (MONAI wraps errors raised in expressions)."""
    while err is not None and not isinstance(err, kind):
        err = err.__cause__ or err.__context__
    assert err is not None, f"no {kind.__name__} in the exception chain"
    return err


@pytest.fixture
def bundle_root(tmp_path, tiny_phantom):
    """A run folder whose demo_data is the session's tiny phantom."""
    root = tmp_path / "run"
    root.mkdir()
    shutil.copytree(tiny_phantom[0], root / "demo_data")
    return root
