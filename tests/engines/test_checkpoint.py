from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from monai_hybrid.engines import AtomicCheckpointSaver, VerifiedCheckpointLoader, load_checkpoint


def _engine(max_epochs=2, epoch_length=3):
    engine = Engine(lambda e, b: None)
    engine.state.max_epochs = max_epochs
    return engine, list(range(epoch_length))


def _interval_saver(folder, net, every: int, filename: str, engine_key: str | None = None) -> AtomicCheckpointSaver:
    """An interval checkpoint of ``net`` every ``every`` iterations under a fixed ``filename``."""
    return AtomicCheckpointSaver(
        save_dir=str(folder),
        save_dict={"model": net},
        save_interval=every,
        epoch_level=False,
        interval_filename=filename,
        engine_key=engine_key,
    )


def test_interval_checkpoint_has_a_fixed_name_and_the_engine_state(tmp_path):
    net = torch.nn.Linear(2, 2)
    engine, data = _engine()
    _interval_saver(tmp_path, net, 2, "checkpoint_last.pt", engine_key="trainer").attach(engine)
    engine.run(data, max_epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_last.pt"]
    ckpt = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert ckpt["trainer"]["iteration"] == 6
    assert set(ckpt) == {"model", "trainer"}


def test_a_kill_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    net = torch.nn.Linear(2, 2)
    engine, data = _engine(max_epochs=1, epoch_length=4)
    _interval_saver(tmp_path, net, 1, "last.pt").attach(engine)
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        if engine.state.iteration == 3:
            f.write(b"partial bytes")  # the process dies half-way through writing
            raise KeyboardInterrupt
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        engine.run(data)
    monkeypatch.setattr(torch, "save", real_save)
    state = load_checkpoint(tmp_path / "last.pt")  # the iteration-2 checkpoint, intact
    assert set(state) == {"weight", "bias"}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_missing_and_corrupted_checkpoints_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt' does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(RuntimeError, match="bad.pt' cannot be loaded"):
        load_checkpoint(bad)


def test_resume_loader_restores_model_and_engine(tmp_path):
    net = torch.nn.Linear(2, 2)
    engine, data = _engine(max_epochs=3)
    _interval_saver(tmp_path, net, 1, "last.pt", engine_key="trainer").attach(engine)
    engine.add_event_handler(Events.ITERATION_COMPLETED(once=4), lambda e: e.terminate())
    engine.run(data)

    fresh = torch.nn.Linear(2, 2)
    resumed, data = _engine(max_epochs=3)
    VerifiedCheckpointLoader(
        load_path=str(tmp_path / "last.pt"), load_dict={"model": fresh}, engine_key="trainer"
    ).attach(resumed)
    seen = []
    resumed.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.iteration))
    resumed.run(data)
    torch.testing.assert_close(fresh.weight, net.weight)
    assert resumed.state.iteration == 9 and resumed.state.epoch == 3
    assert seen == [5, 6, 7, 8, 9]  # killed mid-epoch after iteration 4: it goes on from there
