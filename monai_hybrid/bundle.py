"""The bundle shipped inside the package: where it is, writing a ready copy, and running its configs from Python
(the benchmark, the tests)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["BUNDLE_NAME", "default_bundle_dir", "flag", "optional_path", "run_bundle", "write_bundle"]

BUNDLE_NAME = "hybrid_brain_mri_segmentation"
#: What a bundle folder is made of (models/ starts empty).
_BUNDLE_PARTS = ("configs", "docs", "LICENSE")

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def default_bundle_dir() -> Path:
    """The bundle shipped as package data (``monai_hybrid/bundles/hybrid_brain_mri_segmentation``), in a wheel
    install and a source checkout alike. Read its configs from here; train in a copy (``write_bundle``)."""
    return Path(__file__).resolve().parent / "bundles" / BUNDLE_NAME


def write_bundle(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a ready bundle folder (``configs/``, ``docs/``, ``LICENSE``, an empty ``models/``) to ``out_dir``.

    Args:
        out_dir: the new bundle folder; run ``python -m monai.bundle run ...`` from inside it.
        overwrite: replace the configs and docs of a bundle already in ``out_dir`` (its ``models/``, data and outputs
            are kept).

    Returns:
        ``out_dir`` as a path.

    Raises:
        FileExistsError: ``out_dir`` already holds ``configs/`` and ``overwrite`` is false.
    """
    out = Path(out_dir)
    source = default_bundle_dir()
    if (out / "configs").exists() and not overwrite:
        raise FileExistsError(
            f"'{out}' already holds a bundle (configs/); choose another folder, or pass --overwrite to replace its "
            "configs and docs (models/ and data are kept)."
        )
    out.mkdir(parents=True, exist_ok=True)
    for part in _BUNDLE_PARTS:
        src, dst = source / part, out / part
        if src.is_dir():
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    (out / "models").mkdir(exist_ok=True)
    return out


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


_NONE = ("", "none", "null", "false", "no")


def optional_path(value: Any) -> str | None:
    """A path setting that may be switched off, as a string or ``None``.

    ``python -m monai.bundle run ... --pretrained_checkpoint None`` never reaches the config: MONAI's command line
    drops every override whose value is ``None`` (it means "not given"), so the default applies. The configs read
    such keys through this function, and ``none`` (any case), ``null``, ``false``, ``no`` or an empty string mean no
    path: ``--pretrained_checkpoint none``.

    Args:
        value: ``None``, one of those words, or a path.
    """
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in _NONE:
        return None
    return str(value)


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
