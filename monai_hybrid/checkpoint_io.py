"""Reading a checkpoint file with errors that name the file and say what to do (used by the engines and by weight
transfer alike)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "model_stamp"]


def load_checkpoint(path: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file and say what to do.

    Raises:
        FileNotFoundError: the file does not exist.
        RuntimeError: the file is not a readable checkpoint (truncated, corrupted, or not a weights-only file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Checkpoint '{path}' does not exist; check the path (relative paths are relative to the bundle root)."
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise RuntimeError(
            f"Checkpoint '{path}' cannot be loaded ({type(err).__name__}: {str(err).strip().splitlines()[0][:200]}). "
            "It is truncated, corrupted or not a weights-only PyTorch checkpoint; use another checkpoint (the "
            "previous one is kept beside it until a new one is complete) or start without it."
        ) from err


def model_stamp(path: str | os.PathLike) -> str:
    """A stamp of the model file at ``path`` (modification time and size): it changes when a training replaces it
    (MONAI Label's scoring stores it with each score; the checks compare it).

    Returns:
        ``"<mtime_ns>-<size>"``, or ``""`` when the file does not exist.
    """
    if not os.path.isfile(path):
        return ""
    stat = os.stat(path)
    return f"{stat.st_mtime_ns}-{stat.st_size}"
