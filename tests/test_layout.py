"""The source layout: the bundle at the top level (``bundles/``), every package folder named in pyproject.toml."""

from pathlib import Path

import pytest

from monai_hybrid.bundle import BUNDLE_NAME, default_bundle_dir

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).parents[1]


def _folders(root: Path, package: str) -> set[str]:
    """Dotted names of ``root`` and every folder below it that the wheel ships (caches left out)."""
    found = {package}
    for folder in root.rglob("*"):
        if folder.is_dir() and "__pycache__" not in folder.parts:
            found.add(".".join((package, *folder.relative_to(root).parts)))
    return found


def test_every_package_and_data_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = _folders(ROOT / "monai_hybrid", "monai_hybrid") | _folders(ROOT / "bundles", "monai_hybrid.bundles")
    listed = set(setuptools["packages"])
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert listed <= on_disk, f"{sorted(listed - on_disk)} in pyproject.toml name no folder"
    assert setuptools["package-dir"] == {"monai_hybrid.bundles": "bundles"}


def test_the_bundle_source_is_the_top_level_bundles_folder():
    assert not (ROOT / "monai_hybrid" / "bundles").exists()
    assert default_bundle_dir() == (ROOT / "bundles" / BUNDLE_NAME).resolve()
    assert (default_bundle_dir() / "configs" / "common.yaml").is_file()
