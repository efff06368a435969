"""Installed like a library: a built wheel, in a fresh virtualenv, gives the user the bundle and trains from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.bundle.conftest import TINY_OVERRIDES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd[:4]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (the checkout itself stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    for folder in ("monai_hybrid", "bundles"):  # the bundle's source is the top-level bundles/ (pyproject maps it)
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "models"))
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)])
    (found,) = out.glob("monai_hybrid-*.whl")
    with zipfile.ZipFile(found) as archive:  # the top-level bundles/ inside the package
        assert "monai_hybrid/bundles/hybrid_brain_mri_segmentation/configs/pretrain.yaml" in archive.namelist()
    return found


def test_wheel_in_a_fresh_virtualenv_writes_the_bundle_and_trains_from_it(wheel, tmp_path, tiny_phantom):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # the dependencies come from this environment (a path, not its .pth files: the editable install stays out)
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    code = "import monai_hybrid; print(monai_hybrid.__file__)"
    where = _run([str(python), "-c", code], cwd=tmp_path).stdout.strip()  # not the checkout's folder
    assert where.startswith(str(site)), f"monai_hybrid imported from {where}, not from the wheel"

    bundle = tmp_path / "my_bundle"
    _run([str(env_dir / "bin" / "monai-hybrid"), "bundle", str(bundle)], cwd=tmp_path)
    assert (bundle / "configs" / "common.yaml").is_file() and (bundle / "docs" / "README.md").is_file()
    assert (bundle / "configs" / "synthesis.yaml").is_file() and (bundle / "configs" / "mlflow.yaml").is_file()
    overrides = {**TINY_OVERRIDES, "iterations_per_epoch": 1, "dataset_dir": str(tiny_phantom[0])}
    cmd = [str(python), "-m", "monai.bundle", "run", "pretrain", "--config_file"]
    cmd.append(_run([str(env_dir / "bin" / "monai-hybrid"), "configs", "pretrain"], cwd=bundle).stdout.strip())
    for key, value in overrides.items():
        cmd += [f"--{key}", repr(value)]
    _run(cmd, cwd=bundle, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (bundle / "models" / "pretrain" / "model_final.pt").is_file()
    assert (bundle / "models" / "pretrain" / "model_settings.json").is_file()
