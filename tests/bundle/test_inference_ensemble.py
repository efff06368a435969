"""The hybrid model's own ensemble switched on from the command line on a user's own datalist, and in
inference.yaml alone as MONAI Label reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigParser

from monai_hybrid.bundle import write_bundle
from monai_hybrid.engines import AutocastInferer
from tests.bundle.conftest import BUNDLE, INFERENCE, TINY_SETTINGS, run_config


def test_monai_label_reads_the_ensemble_from_inference_yaml_alone(tmp_path):
    """MONAI Label's BundleInferTask parses configs/inference.yaml alone (a ConfigParser with bundle_root set to the
    app's bundle) and instantiates its 'inferer': one pass by default, and the ensemble once the setting is edited
    in that file, noised with the schedule recorded beside the weights."""
    bundle = write_bundle(tmp_path / "app_bundle")
    (bundle / "models").mkdir(exist_ok=True)
    settings = {**TINY_SETTINGS, "noise_schedule": {"num_train_timesteps": 20, "schedule": "linear_beta"}}
    (bundle / "models" / "model_settings.json").write_text(json.dumps(settings))
    config = bundle / "configs" / "inference.yaml"

    def inferer():
        parser = ConfigParser()
        parser.read_config(str(config))
        parser.config.update({"bundle_root": str(bundle)})
        served = parser.get_parsed_content("inferer", instantiate=True)
        # on a CPU with a fast bfloat16 path (amp auto) the served inferer autocasts the mask inferer
        return served.inferer if isinstance(served, AutocastInferer) else served

    default = inferer()
    assert default.timesteps == (0,) and default.passes == 1 and default.scheduler is None
    text = config.read_text()
    assert text.count("\nensemble_timesteps: [0]\n") == 1 and text.count("\nensemble_draws: 1\n") == 1
    text = text.replace("\nensemble_timesteps: [0]\n", "\nensemble_timesteps: [0, 5, 10]\n")
    config.write_text(text.replace("\nensemble_draws: 1\n", "\nensemble_draws: 2\n"))
    edited = inferer()
    assert edited.timesteps == (0, 5, 10) and edited.passes == 5 and edited.scheduler.num_train_timesteps == 20


@pytest.mark.slow
def test_inference_with_the_ensemble_from_the_command_line_on_a_users_datalist(pretrained_root, tmp_path):
    """A user's own datalist (absolute paths, images only, its own list name) and the ensemble switched on as a user
    types it: the labels equal those of the same settings given in-process (the noise is seeded: the same in every
    process) and differ from one pass, which the default still is. The tiny model trained with 20 noise levels
    (model_settings.json), so the levels stay below 20."""
    site = pretrained_root / "demo_data" / "site_d_pd"
    entry = json.loads((site / "datalist.json").read_text())["test"][0]
    mine = tmp_path / "my_scans.json"
    mine.write_text(json.dumps({"new_scans": [{"image": str(site / entry["image"])}]}))
    model = pretrained_root / "models" / "pretrain" / "model.pt"
    # float32: the command line runs on one thread, the test on two, and bfloat16 sums differ with the thread count
    user = {"input": str(mine), "datalist_key": "new_scans", "model_path": str(model), "amp": "false"}
    cli, in_process, one_pass = tmp_path / "cli", tmp_path / "in_process", tmp_path / "one_pass"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(BUNDLE / "configs" / "inference.yaml")]
    cmd += ["--bundle_root", str(pretrained_root), "--output_dir", str(cli)]
    cmd += [arg for key, value in user.items() for arg in (f"--{key}", value)]
    cmd += ["--ensemble_timesteps", "[0, 5, 10]", "--ensemble_draws", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    ensemble = {"ensemble_timesteps": [0, 5, 10], "ensemble_draws": 2}
    run_config("run", INFERENCE, pretrained_root, output_dir=str(in_process), **ensemble, **user)
    run_config("run", INFERENCE, pretrained_root, output_dir=str(one_pass), **user)
    name = entry["image"].split("/")[-1].replace(".nii.gz", "_seg.nii.gz")
    labels = {f.name: np.asarray(nib.load(str(f / name)).dataobj) for f in (cli, in_process, one_pass)}
    assert labels["cli"].shape == labels["one_pass"].shape == nib.load(str(site / entry["image"])).shape
    assert np.array_equal(labels["cli"], labels["in_process"])
    assert not np.array_equal(labels["cli"], labels["one_pass"])
