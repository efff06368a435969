"""Importing the package changes nothing global; a run installs the error hook in its initialize step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

CONFIGS = Path(__file__).parents[1] / "monai_hybrid" / "bundles" / "hybrid_brain_mri_segmentation" / "configs"


def test_importing_the_package_and_its_error_module_leaves_the_exception_hook_alone():
    code = (
        "import sys, monai_hybrid, monai_hybrid.errors, monai_hybrid.engines, monai_hybrid.benchmark\n"
        "assert sys.excepthook is sys.__excepthook__, sys.excepthook\n"
        "monai_hybrid.errors.install()\n"
        "assert sys.excepthook is monai_hybrid.errors._hook\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_run_with_an_initialize_step_installs_the_hook_first():
    for name in ("pretrain.yaml", "inference.yaml", "multi_gpu_train.yaml"):
        steps = yaml.safe_load((CONFIGS / name).read_text())["initialize"]
        assert steps[0] == "$monai_hybrid.errors.install()", name
