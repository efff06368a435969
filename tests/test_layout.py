"""The source layout: the bundle at the top level (``bundles/``), every package folder named in pyproject.toml."""

from pathlib import Path

import pytest

from monai_hybrid.bundle import BUNDLE_NAME, default_bundle_dir

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "monai_hybrid").rglob("__init__.py")}
    listed = set(setuptools["packages"])
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert setuptools["package-dir"] == {"monai_hybrid.bundles": "bundles"}
    assert listed - on_disk == {"monai_hybrid.bundles"}


def test_the_bundle_source_is_the_top_level_bundles_folder():
    assert not (ROOT / "monai_hybrid" / "bundles").exists()
    assert default_bundle_dir() == (ROOT / "bundles" / BUNDLE_NAME).resolve()
    assert (default_bundle_dir() / "configs" / "common.yaml").is_file()
