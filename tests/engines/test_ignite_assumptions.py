"""The two places that rely on private members of ignite and MONAI, checked directly: an upgrade that changes them
fails here, by name, instead of in a tracking or checkpointing run (see the comments in engines/handlers.py and
engines/checkpoint.py)."""

from __future__ import annotations

from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointSaver

from monai_hybrid.engines import AtomicCheckpointSaver
from monai_hybrid.engines.handlers import handler_entries, replace_handler


def test_ignite_keeps_handlers_as_event_to_list_of_handler_args_kwargs():
    engine = Engine(lambda e, b: None)

    def first(engine, tag):
        calls.append(("first", tag))

    def second(engine):
        calls.append(("second",))

    calls: list = []
    engine.add_event_handler(Events.STARTED, first, "a")
    engine.add_event_handler(Events.STARTED, second)
    entries = [(event, i, h) for event, i, h in handler_entries(engine) if event == Events.STARTED]
    assert entries == [(Events.STARTED, 0, first), (Events.STARTED, 1, second)]
    handler, args, kwargs = engine._event_handlers[Events.STARTED][0]
    assert handler is first and args[-1] == "a" and kwargs == {}

    def replacement(engine, tag):
        calls.append(("replacement", tag))

    replace_handler(engine, Events.STARTED, 0, replacement)  # keeps the arguments and the order
    engine.run([0], max_epochs=1)
    assert calls == [("replacement", "a"), ("second",)]


def test_monai_checkpoint_saver_keeps_one_ignite_checkpoint_per_kind(tmp_path):
    saver = CheckpointSaver(
        str(tmp_path), {"x": Engine(lambda e, b: None)}, save_final=True, save_key_metric=True, save_interval=1
    )
    for name in ("_final_checkpoint", "_key_metric_checkpoint", "_interval_checkpoint"):
        checkpoint = getattr(saver, name)
        assert isinstance(checkpoint, Checkpoint) and isinstance(checkpoint.save_handler, DiskSaver), name
    assert saver._final_filename is None


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
    assert [h.filename for h in handlers] == ["final.pt", "best.pt", "last.pt"]
    assert all(h._atomic for h in handlers)
