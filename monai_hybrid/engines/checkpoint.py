"""Checkpoints that survive a kill: atomic writes and clear errors on load.

MONAI's ``CheckpointSaver`` writes with ignite's ``DiskSaver(atomic=False)`` and, for a fixed file name, deletes the
previous file before writing the new one: a kill at the wrong moment leaves no loadable checkpoint. Here every file
is written to a temporary file in the same folder and renamed over the old one (``os.replace`` is atomic), and the
old file is never deleted first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine
from ignite.handlers import DiskSaver
from monai.handlers import CheckpointLoader, CheckpointSaver

__all__ = ["AtomicCheckpointSaver", "VerifiedCheckpointLoader", "load_checkpoint"]

logger = logging.getLogger(__name__)


class _AtomicDiskSaver(DiskSaver):
    """ignite's atomic ``DiskSaver`` with an optional fixed file name whose old copy is replaced, not deleted."""

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        super().__init__(dirname=dirname, require_empty=False, atomic=True, create_dir=True)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        super().__call__(checkpoint, self.filename or filename, metadata)

    def remove(self, filename: str) -> None:
        if self.filename is None:  # numbered files: drop the old one (the new one is already complete)
            super().remove(filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` with atomic writes, and a fixed name for the interval checkpoint.

    Args:
        interval_filename: fixed name of the interval checkpoint (e.g. ``checkpoint_last.pt``), replaced at each
            save; ``None`` keeps MONAI's numbered names.
        engine_key: also save the state of the engine it is attached to under this key (a config cannot refer to
            the trainer from the trainer's own handlers without a circular reference).
        args, kwargs: those of ``monai.handlers.CheckpointSaver``.
    """

    def __init__(
        self, *args: Any, interval_filename: str | None = None, engine_key: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.engine_key = engine_key
        final = self._final_filename
        for checkpoint, filename in (
            (self._final_checkpoint, final),
            (self._key_metric_checkpoint, kwargs.get("key_metric_filename")),
            (self._interval_checkpoint, interval_filename),
        ):
            if checkpoint is not None:
                checkpoint.save_handler = _AtomicDiskSaver(str(self.save_dir), filename)

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine  # the same dict object the ignite checkpoints hold
        super().attach(engine)


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


class VerifiedCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` (weights only; restores model, optimiser, scheduler and engine state) whose
    errors name the file: a missing file or a corrupted one says so before any step runs. Used to resume training
    and to load the model for evaluation and inference.

    Args:
        engine_key: also restore the state of the engine it is attached to from this key of the checkpoint.
        args, kwargs: those of ``monai.handlers.CheckpointLoader``.
    """

    def __init__(self, *args: Any, engine_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine_key = engine_key

    def __call__(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        load_checkpoint(self.load_path, self.map_location)  # clear errors first; ignite then loads it for real
        super().__call__(engine)
        logger.info(
            "Loaded '%s' (engine at epoch %d, iteration %d).",
            self.load_path,
            engine.state.epoch,
            engine.state.iteration,
        )
