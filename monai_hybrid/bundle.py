"""Running this project's bundle configs from Python (the benchmark, the tests)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_bundle", "default_bundle_dir", "flag"]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def default_bundle_dir() -> Path:
    """The bundle beside the package in a source checkout."""
    return Path(__file__).resolve().parents[1] / "bundles" / "hybrid_brain_mri_segmentation"


def flag(value: Any, key: str) -> bool:
    """A yes/no setting of a bundle config as a ``bool``.

    ``python -m monai.bundle run ... --resume false`` hands the config the *string* ``'false'`` (Fire parses only
    Python literals), which a plain ``$not @resume`` would take as true. The configs read their yes/no keys through
    this function.

    Args:
        value: ``True``/``False``, ``0``/``1``, or a string such as ``'true'``, ``'False'``, ``'no'``.
        key: the config key, named in the error.

    Raises:
        ValueError: for anything else, naming the key.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(
        f"Config key '{key}' must be true or false, got {value!r}; pass e.g. --{key} true or --{key} false."
    )


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
