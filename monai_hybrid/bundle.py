"""Running this project's bundle configs from Python (the benchmark, the tests)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_bundle", "default_bundle_dir"]


def default_bundle_dir() -> Path:
    """The bundle beside the package in a source checkout."""
    return Path(__file__).resolve().parents[1] / "bundles" / "hybrid_brain_mri_segmentation"


def run_bundle(
    run_id: str,
    configs: Sequence[str],
    bundle_root: str | os.PathLike,
    bundle_dir: str | os.PathLike | None = None,
    **overrides: Any,
) -> Any:
    """Run ``run_id`` of the bundle's ``configs`` (file names in its ``configs/``), exactly as
    ``python -m monai.bundle run`` does, with ``bundle_root`` as the run's folder.

    Returns:
        The finished ``monai.bundle.ConfigWorkflow`` (its ``parser`` holds the engines and their state).
    """
    from monai.bundle import ConfigWorkflow

    bundle = Path(bundle_dir) if bundle_dir is not None else default_bundle_dir()
    Path(bundle_root).mkdir(parents=True, exist_ok=True)
    workflow = ConfigWorkflow(
        config_file=[str(bundle / "configs" / c) for c in configs],
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=False,
        run_id=run_id,
        **{"bundle_root": str(bundle_root), **overrides},
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow
