"""ModelSettingsWriter: settings beside the checkpoints at the start of training, or, where the folder holds models
with other settings (a class added to a served model), only with the run's final model."""

from __future__ import annotations

import json

from ignite.engine import Engine, Events

from monai_hybrid.engines import ModelSettingsWriter
from tests.bundle.conftest import TINY_SETTINGS as MODEL_SETTINGS

TISSUES = MODEL_SETTINGS["class_names"]
SETTINGS = MODEL_SETTINGS


def _run(folder, settings) -> list:
    """A two-iteration run with the writer, a saver that replaces model.pt at completion (attached after the writer,
    as in the bundle's handlers), and what the settings file said at each event."""
    seen = []

    def classes():
        path = folder / "model_settings.json"
        return json.loads(path.read_text())["class_names"] if path.is_file() else None

    engine = Engine(lambda e, b: seen.append(("iteration", classes())))
    ModelSettingsWriter(settings, str(folder)).attach(engine)
    engine.add_event_handler(Events.COMPLETED, lambda e: (folder / "model.pt").write_bytes(b"new"))
    engine.add_event_handler(Events.COMPLETED, lambda e: seen.append(("completed", classes())))
    engine.run([0, 1], max_epochs=1)
    return seen


def test_settings_are_written_when_training_starts_in_a_new_folder(tmp_path):
    seen = _run(tmp_path, SETTINGS)
    assert seen[0] == ("iteration", TISSUES)


def test_settings_of_a_served_model_with_other_classes_stay_until_the_final_model_replaces_it(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO)
    (tmp_path / "model.pt").write_bytes(b"served")
    (tmp_path / "model_settings.json").write_text(json.dumps(SETTINGS))
    grown = {**SETTINGS, "class_names": TISSUES + ["lesion"]}
    seen = _run(tmp_path, grown)
    # during training a server loading the served model reads its own four classes
    assert seen[:2] == [("iteration", TISSUES), ("iteration", TISSUES)]
    # and at completion the new settings come after every handler attached with the bundle's (the saver of model.pt)
    assert seen[2] == ("completed", TISSUES)
    assert json.loads((tmp_path / "model_settings.json").read_text())["class_names"] == TISSUES + ["lesion"]
    assert "written when it completes" in caplog.text


def test_the_same_settings_are_written_at_the_start_as_always(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"served")
    (tmp_path / "model_settings.json").write_text(json.dumps(SETTINGS))
    assert _run(tmp_path, SETTINGS)[0] == ("iteration", TISSUES)
