"""What a new site hits first with its own data: no validation list, fine-tuning from scratch on the command line,
a label value outside the datalist's labels map, and a bad datalist's message at the end of the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_hybrid.cli import main
from tests.bundle.conftest import BUNDLE, FINETUNE, PRETRAIN, TINY_OVERRIDES, run_config

pytestmark = pytest.mark.slow


def _bundle_command(run_id: str, configs: list[str], bundle_root: Path, **overrides) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run`` as a user types it, with the tiny settings."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file"]
    cmd += [repr([str(BUNDLE / "configs" / c) for c in configs]), "--bundle_root", str(bundle_root)]
    for key, value in {**TINY_OVERRIDES, "progress_bar": False, **overrides}.items():
        cmd += [f"--{key}", value if isinstance(value, str) else repr(value)]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_finetune_without_a_validation_list_runs_and_says_so(bundle_root, caplog):
    datalist = bundle_root / "demo_data" / "site_c_flair" / "datalist.json"
    data = json.loads(datalist.read_text())
    del data["validation"]
    mine = datalist.with_name("no_validation.json")
    mine.write_text(json.dumps(data))
    wf = run_config("finetune", FINETUNE, bundle_root, pretrained_checkpoint=None, datalist=str(mine))
    assert wf.parser.get_parsed_content("train#trainer").state.iteration == 2
    assert (bundle_root / "models" / "model.pt").is_file()
    assert not (bundle_root / "models" / "model_best.pt").exists()  # no validation, no best model
    assert "No validation cases: fine-tuning runs without validation" in caplog.text


def test_pretrained_checkpoint_none_on_the_command_line_trains_from_scratch(bundle_root):
    proc = _bundle_command("finetune", FINETUNE, bundle_root, pretrained_checkpoint="none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (bundle_root / "models" / "model.pt").is_file()
    assert not (bundle_root / "models" / "weight_transfer.json").exists()  # nothing was loaded


def test_a_bad_datalist_ends_the_output_with_the_project_message(bundle_root):
    proc = _bundle_command("pretrain", PRETRAIN, bundle_root, datalist=str(bundle_root / "nowhere.json"))
    assert proc.returncode != 0
    last = [line for line in proc.stderr.strip().splitlines() if line.strip()][-3:]
    text = "\n".join(last)
    assert "monai-hybrid stopped the run: DatalistError" in text, proc.stderr[-3000:]
    assert "nowhere.json" in text and "fix the file or the path given" in text


def test_verify_takes_the_classes_from_the_labels_map(tiny_phantom, tmp_path, capsys):
    src = tiny_phantom[0] / "site_a_t1w"
    data = json.loads((src / "datalist.json").read_text())
    entry = data["training"][0]
    label = nib.load(str(src / entry["label"]))
    values = np.asarray(label.dataobj).copy()
    values[0, 0, 0] = 9  # outside the map's 0..3
    nib.save(nib.Nifti1Image(values, label.affine), str(tmp_path / "bad_label.nii.gz"))
    entry["image"], entry["label"] = str(src / entry["image"]), str(tmp_path / "bad_label.nii.gz")
    data["training"] = [entry]
    for name in ("validation", "test", "unlabeled"):
        data.pop(name, None)
    (tmp_path / "datalist.json").write_text(json.dumps(data))
    assert main(["verify", str(tmp_path / "datalist.json"), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "bad_label.nii.gz" in err and "9" in err
