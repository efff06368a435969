"""The multi-GPU overlay, run by torchrun with 2 CPU processes (gloo backend) for a few iterations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.bundle.conftest import BUNDLE, PRETRAIN, TINY_OVERRIDES

pytestmark = pytest.mark.slow


def _cli(overrides: dict) -> list[str]:
    args = []
    for key, value in overrides.items():
        args += [f"--{key}", repr(value) if not isinstance(value, str) else value]
    return args


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
    reason="torchrun not installed",
)
def test_pretrain_with_two_processes(bundle_root):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    configs = [str(BUNDLE / "configs" / c) for c in (*PRETRAIN, "multi_gpu_train.yaml")]
    cmd = [
        torchrun,
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
        "-m",
        "monai.bundle",
        "run",
        "pretrain",
        "--config_file",
        json.dumps(configs),
        "--meta_file",
        str(BUNDLE / "configs" / "metadata.json"),
        "--logging_file",
        str(BUNDLE / "configs" / "logging.conf"),
        "--bundle_root",
        str(bundle_root),
        *_cli({**TINY_OVERRIDES, "epochs": 2, "iterations_per_epoch": 3}),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = torch.load(bundle_root / "models" / "pretrain" / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 6 and last["trainer"]["max_epochs"] == 2
    assert not any(k.startswith("module.") for k in last["model"])  # saved unwrapped, loadable without DDP
    assert "val_mean_dice" in result.stdout + result.stderr
