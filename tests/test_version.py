"""One version story: the package, the bundle it ships and the command line say the same version."""

from __future__ import annotations

import json
import subprocess
import sys

import monai_hybrid
from monai_hybrid.bundle import default_bundle_dir


def test_the_package_and_its_bundle_have_one_version_and_one_changelog():
    meta = json.loads((default_bundle_dir() / "configs" / "metadata.json").read_text())
    assert meta["version"] == monai_hybrid.__version__
    assert meta["required_packages_version"]["monai-hybrid"] == monai_hybrid.__version__
    assert monai_hybrid.__version__ in meta["changelog"], "the changelog has no entry for this version"
    newest = max(meta["changelog"], key=lambda v: tuple(int(p) for p in v.split(".")))
    assert newest == monai_hybrid.__version__


def test_the_command_line_says_the_version():
    out = subprocess.run(
        [sys.executable, "-m", "monai_hybrid.cli", "--version"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        f"monai-hybrid {monai_hybrid.__version__} (ships the bundle hybrid_brain_mri_segmentation "
        f"{monai_hybrid.__version__})"
    )
