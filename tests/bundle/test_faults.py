"""Faults: a pretraining process killed mid-epoch resumes and finishes with the configured number of iterations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from tests.bundle.conftest import BUNDLE, PRETRAIN, TINY_OVERRIDES, run_config

pytestmark = pytest.mark.slow


def _iteration(path) -> int:
    return int(torch.load(path, weights_only=True)["trainer"]["iteration"]) if path.is_file() else 0


def test_killed_mid_epoch_resumes_and_finishes(bundle_root):
    overrides = {**TINY_OVERRIDES, "epochs": 2, "iterations_per_epoch": 20, "checkpoint_every": 1, "val_interval": 2}
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "pretrain",
        "--config_file",
        repr([str(BUNDLE / "configs" / c) for c in PRETRAIN]),
        "--meta_file",
        str(BUNDLE / "configs" / "metadata.json"),
        "--bundle_root",
        str(bundle_root),
    ]
    for key, value in overrides.items():
        cmd += [f"--{key}", repr(value)]
    cmd += ["--log_every", "1", "--progress_bar", "false"]
    last = bundle_root / "models" / "pretrain" / "checkpoint_last.pt"
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    output: list[str] = []
    try:
        # The loss of iteration 4 is logged after every handler of iteration 3 ran, its checkpoint included.
        for line in proc.stdout:
            output.append(line)
            if "Iter: 4/20" in line:
                break
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up, as a killed job or a lost node
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    log = "".join(output[-40:])
    killed_at = _iteration(last)
    assert 3 <= killed_at < 40, f"killed at iteration {killed_at}; the run's last output:\n{log}"
    assert not (bundle_root / "models" / "pretrain" / "model_final.pt").exists()
    wf = run_config(
        "pretrain",
        PRETRAIN,
        bundle_root,
        resume=True,
        **{k: v for k, v in overrides.items() if k not in TINY_OVERRIDES or k == "epochs"},
    )
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.iteration == 40 and trainer.state.epoch == 2
    final = torch.load(bundle_root / "models" / "pretrain" / "model_final.pt", weights_only=True)
    assert final["trainer"]["iteration"] == 40
