"""docs/how-to/own-data.md as a user runs it: a hospital's own labelled source and its own target site, written in a
layout of its own (not the phantom's), from an empty folder to segmentations of new scans, every step a command of
the how-to (with the tests' tiny settings)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.bundle.conftest import TINY_OVERRIDES

pytestmark = pytest.mark.slow

CLASSES = {"0": "background", "1": "csf", "2": "grey_matter", "3": "white_matter"}


def _run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False
    )
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stderr[-4000:]}"
    return proc.stdout


def _bundle(run: str, stack: str, cwd: Path, **overrides) -> None:
    """``python -m monai.bundle run <run> --config_file "$(monai-hybrid configs <stack>)" --key value ...``."""
    configs = _run([sys.executable, "-m", "monai_hybrid.cli", "configs", *stack.split()], cwd).strip()
    cmd = [sys.executable, "-m", "monai.bundle", "run", *([run] if run else []), "--config_file", configs]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else repr(value)]
    _run(cmd, cwd)


def _hospital(phantom: Path, site: str, root: Path, lists: dict[str, int]) -> dict[str, list[dict]]:
    """The phantom site's scans copied to ``root/<study>/t.nii.gz`` and ``root/<study>/seg/labels.nii.gz`` (a PACS
    export's layout, nothing like the phantom's), for the first ``n`` cases of each list."""
    data = json.loads((phantom / site / "datalist.json").read_text())
    out: dict[str, list[dict]] = {}
    for name, n in lists.items():
        out[name] = []
        for i, entry in enumerate(data[name][:n]):
            study = root / f"{name}_study{i:03d}"
            (study / "seg").mkdir(parents=True)
            shutil.copy(phantom / site / entry["image"], study / "t.nii.gz")
            shutil.copy(phantom / site / entry["label"], study / "seg" / "labels.nii.gz")
            out[name].append({"image": str(study / "t.nii.gz"), "label": str(study / "seg" / "labels.nii.gz")})
    return out


def _relative(entries: dict[str, list[dict]], folder: Path) -> dict[str, list[dict]]:
    return {n: [{k: os.path.relpath(v, folder) for k, v in e.items()} for e in es] for n, es in entries.items()}


def test_own_data_from_an_empty_folder_to_segmentations(tiny_phantom, tmp_path):
    phantom = tiny_phantom[0]
    lists = tmp_path / "lists"
    lists.mkdir()
    # the source: a labelled dataset of the hospital's own (the phantom's T1w site here), paths relative to the JSON
    source = _hospital(phantom, "site_a_t1w", tmp_path / "archive" / "t1_cohort", {"training": 4, "validation": 2})
    (lists / "source.json").write_text(json.dumps({**_relative(source, lists), "labels": CLASSES}))
    # the target: one labelled scan of the new site and two test scans, every study's files named alike, nothing for
    # validation (absolute paths)
    target = _hospital(phantom, "site_c_flair", tmp_path / "flair_site", {"training": 1, "validation": 1, "test": 1})
    target["test"] += target.pop("validation")
    (lists / "target.json").write_text(json.dumps({**target, "labels": CLASSES}))

    work = tmp_path / "work"
    work.mkdir()
    _run([sys.executable, "-m", "monai_hybrid.cli", "bundle", "my_bundle"], work)
    bundle = work / "my_bundle"
    tiny = {**TINY_OVERRIDES, "progress_bar": False}
    del tiny["generate_demo_data"]  # a user's datalist outside demo_data generates nothing

    # 0. pretrain on the source (the how-to's section 0), verified first
    _run([sys.executable, "-m", "monai_hybrid.cli", "verify", str(lists / "source.json"), "--require", "training",
          "validation"], bundle)  # fmt: skip
    _bundle("pretrain", "pretrain", bundle, datalist=str(lists / "source.json"), **tiny)
    assert (bundle / "models" / "pretrain" / "model_final.pt").is_file()
    assert not (bundle / "demo_data").exists()

    # 2-3. verify the target with the one list a one-scan site has, fine-tune on its one labelled scan
    _run(
        [sys.executable, "-m", "monai_hybrid.cli", "verify", str(lists / "target.json"), "--require", "training"],
        bundle,
    )
    _bundle("finetune", "finetune", bundle, datalist=str(lists / "target.json"), num_labeled=1, **tiny)
    drawn = json.loads((bundle / "models" / "labelled_cases.json").read_text())["cases"]
    assert [c["image"] for c in drawn] == [target["training"][0]["image"]]

    # 4. evaluate on the test scans: two studies' t.nii.gz are two cases and two predictions
    _bundle("", "evaluate", bundle, input=str(lists / "target.json"), datalist_key="test")
    out = bundle / "eval" / "evaluate"
    report = json.loads((out / "metrics.json").read_text())
    assert sorted(c["case"] for c in report["cases"]) == ["test_study000/t", "validation_study000/t"]
    assert 0.0 <= report["summary"]["mean_fg_dice"]["mean"] <= 1.0
    assert (out / "test_study000" / "t_seg.nii.gz").is_file() and (
        out / "validation_study000" / "t_seg.nii.gz"
    ).is_file()

    # 5. segment new scans, listed in a datalist (every study's scan named t.nii.gz): each output on its input's grid
    _bundle(
        "", "inference", bundle, input=str(lists / "target.json"), datalist_key="test", output_dir=str(tmp_path / "seg")
    )
    for study in ("test_study000", "validation_study000"):
        image = nib.load(str(tmp_path / "flair_site" / study / "t.nii.gz"))
        seg = nib.load(str(tmp_path / "seg" / study / "t_seg.nii.gz"))
        assert seg.shape == image.shape and np.allclose(seg.affine, image.affine, atol=1e-4)
        assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 3}
