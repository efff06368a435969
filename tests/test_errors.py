"""Importing the package changes nothing global; a run installs the error hook in its initialize step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

CONFIGS = Path(__file__).parents[1] / "bundles" / "hybrid_brain_mri_segmentation" / "configs"


def _runs_cleanly(code: str) -> None:
    """``code`` in a fresh interpreter (what a run installs must not leak into the test process) exits 0."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_importing_the_package_and_its_error_module_leaves_the_exception_hook_alone():
    _runs_cleanly(
        "import sys, monai_hybrid, monai_hybrid.errors, monai_hybrid.engines, monai_hybrid.benchmark\n"
        "assert sys.excepthook is sys.__excepthook__, sys.excepthook\n"
        "monai_hybrid.errors.install()\n"
        "assert sys.excepthook is monai_hybrid.errors._hook\n"
    )


def test_every_run_with_an_initialize_step_starts_with_the_one_shared_step():
    """The steps every run shares (the error hook, the threads) are declared once, in ``bundle.start_run``."""
    for name in ("pretrain.yaml", "inference.yaml", "multi_gpu_train.yaml"):
        steps = yaml.safe_load((CONFIGS / name).read_text())["initialize"]
        assert steps[0] == "$monai_hybrid.bundle.start_run(@num_threads)", name
        assert not any("errors.install" in str(s) or "use_threads" in str(s) for s in steps[1:]), name


def test_start_run_installs_the_hook_and_sets_the_threads_only_when_told():
    _runs_cleanly(
        "import sys, torch, monai_hybrid.bundle as b\n"
        "n = torch.get_num_threads()\n"
        "b.start_run(None)\n"
        "assert sys.excepthook is __import__('monai_hybrid.errors').errors._hook and torch.get_num_threads() == n\n"
        "b.start_run('1')\n"
        "assert torch.get_num_threads() == 1\n"
    )


def test_an_option_is_checked_by_its_owner_with_monais_did_you_mean():
    import pytest

    from monai_hybrid.engines import HybridPrepareBatch
    from monai_hybrid.networks import HybridDiffusionUNet
    from monai_hybrid.options import PredictionType, choose

    assert choose("epsilon", PredictionType, "x", "prediction_type") is PredictionType.EPSILON
    with pytest.raises(ValueError, match=r"HybridPrepareBatch: 'prediction_type' got 'epsilonn'\. By 'epsilonn', did"):
        from monai.networks.schedulers import DDPMScheduler

        HybridPrepareBatch(DDPMScheduler(20), prediction_type="epsilonn")
    with pytest.raises(ValueError, match=r"'mode' got 'hybird'\. By 'hybird', did you mean 'hybrid'\?"):
        HybridPrepareBatch(DDPMScheduler(20), mode="hybird")
    with pytest.raises(ValueError, match="HybridDiffusionUNet: 'output_mode' got 'logits'"):
        HybridDiffusionUNet(
            2, 1, 4, channels=(8, 16), attention_levels=(False, False), norm_num_groups=8, output_mode="logits"
        )
