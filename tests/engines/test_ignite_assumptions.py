"""The one place that relies on private members of MONAI, checked directly: an upgrade that changes them fails here,
by name, instead of in a checkpointing run (see the comment in engines/checkpoint.py)."""

from __future__ import annotations

from ignite.engine import Engine
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointSaver

from monai_hybrid.engines import AtomicCheckpointSaver
from monai_hybrid.engines.checkpoint import _AtomicDiskSaver


def test_monai_checkpoint_saver_keeps_one_ignite_checkpoint_per_kind(tmp_path):
    saver = CheckpointSaver(
        str(tmp_path), {"x": Engine(lambda e, b: None)}, save_final=True, save_key_metric=True, save_interval=1
    )
    for name in ("_final_checkpoint", "_key_metric_checkpoint", "_interval_checkpoint"):
        checkpoint = getattr(saver, name)
        assert isinstance(checkpoint, Checkpoint) and isinstance(checkpoint.save_handler, DiskSaver), name


def test_atomic_saver_puts_atomic_savers_in_every_checkpoint(tmp_path):
    saver = AtomicCheckpointSaver(
        str(tmp_path),
        {"x": Engine(lambda e, b: None)},
        save_final=True,
        final_filename="final.pt",
        save_key_metric=True,
        key_metric_filename="best.pt",
        save_interval=1,
        interval_filename="last.pt",
    )
    handlers = [saver._final_checkpoint.save_handler, saver._key_metric_checkpoint.save_handler]
    handlers.append(saver._interval_checkpoint.save_handler)
    assert all(isinstance(h, _AtomicDiskSaver) for h in handlers)
    assert [h.filename for h in handlers] == ["final.pt", "best.pt", "last.pt"]
