"""One atomic write for every file the package replaces: whole or not at all, with an explicit file mode."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from monai_hybrid.atomic_write import FILE_MODE, atomic_path, write_text_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_replaces_the_file_with_the_explicit_mode_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "result.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and _mode(target) == FILE_MODE == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]
    write_text_atomic(target, "private", mode=0o600)
    assert _mode(target) == 0o600


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.pt"
    torch.save({"w": 1}, target)
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a checkpoint")
        raise RuntimeError("killed")
    assert torch.load(target, weights_only=True) == {"w": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_two_writers_of_one_file_get_their_own_temporaries(tmp_path):
    target = tmp_path / "model_settings.json"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1"  # the outer block ends last


def test_the_checkpoint_saver_writes_with_the_mode(tmp_path):
    from ignite.engine import Engine

    from monai_hybrid.engines import AtomicCheckpointSaver

    net = torch.nn.Linear(2, 2)
    engine = Engine(lambda e, b: None)
    AtomicCheckpointSaver(
        str(tmp_path), {"model": net}, save_interval=1, epoch_level=False, interval_filename="checkpoint_last.pt"
    ).attach(engine)
    engine.run([0, 1], max_epochs=1)
    assert _mode(tmp_path / "checkpoint_last.pt") == FILE_MODE
