"""GuardedMLFlowHandler: what it records in a local MLflow store, and a tracking server that cannot be reached."""

from __future__ import annotations

import logging
import os
import socket
import time

import mlflow
import pytest
import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser
from monai.bundle.utils import DEFAULT_MLFLOW_SETTINGS

from monai_hybrid.bundle import default_bundle_dir
from monai_hybrid.engines import GuardedMLFlowHandler, TrackingGuard

HTTP_ENV = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")


def _trainer(iterations: int = 2) -> tuple[Engine, list[int]]:
    """An engine whose output has the total loss and two terms, and that averages them into its epoch metrics."""

    def step(engine, batch):
        x = float(batch)
        return {"loss": torch.tensor(3 * x), "loss_image": torch.tensor(x), "loss_mask": torch.tensor(2 * x)}

    engine = Engine(step)

    @engine.on(Events.EPOCH_COMPLETED)
    def _metrics(engine):
        engine.state.metrics["epoch_loss"] = float(engine.state.output["loss"])

    return engine, list(range(1, iterations + 1))


def _handler(uri: str, **kwargs) -> GuardedMLFlowHandler:
    return GuardedMLFlowHandler(
        uri, experiment_name="test", run_name="tiny", close_on_complete=True, http_timeout=1, **kwargs
    )


@pytest.fixture
def sqlite_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers: a request there ends at its read timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_logs_params_and_every_loss_term(sqlite_uri):
    engine, data = _trainer()
    params = {"mode": "hybrid", "t0_fraction": 0.5, "roi": torch.tensor([32, 32])}
    _handler(sqlite_uri, experiment_param=params, tag_name="train_loss").attach(engine)
    engine.run(data, max_epochs=1)
    client = mlflow.MlflowClient(sqlite_uri)
    run = client.search_runs(client.get_experiment_by_name("test").experiment_id)[0]
    assert run.info.run_name == "tiny" and run.info.status == "FINISHED"
    assert run.data.params == {
        "mode": "hybrid",
        "t0_fraction": "0.5",
        "roi": "[32, 32]",
        "max_epochs": "1",
        "epoch_length": "2",
    }
    for name, per_x in (("train_loss", 3), ("loss_image", 1), ("loss_mask", 2)):
        history = client.get_metric_history(run.info.run_id, name)
        assert sorted((m.step, m.value) for m in history) == [(1, per_x * 1.0), (2, per_x * 2.0)], name
    assert run.data.metrics["epoch_loss"] == 6.0


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_unreachable_server_warns_once_and_training_goes_on(server, silent_server, caplog):
    uri = "http://127.0.0.1:9" if server == "refused" else silent_server
    engine, data = _trainer()
    guard = TrackingGuard()
    _handler(uri, guard=guard).attach(engine)
    _handler(uri, guard=guard, iteration_log=False).attach(engine)  # a validator's handler of the same run
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    engine.run(data, max_epochs=1)
    assert time.monotonic() - started < 10  # one request of at most http_timeout = 1 s, no retries
    assert engine.state.iteration == 2 and guard.failed
    warnings = [r for r in caplog.records if "MLflow tracking failed" in r.getMessage()]
    assert len(warnings) == 1


def test_http_settings_hold_during_its_calls_and_the_environment_is_restored(sqlite_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    before = dict(os.environ)
    seen = []
    engine, data = _trainer()
    handler = _handler(
        sqlite_uri,
        http_max_retries=2,
        iteration_logger=lambda e: seen.append(tuple(os.environ.get(k) for k in HTTP_ENV)),
    )
    handler.attach(engine)
    engine.run(data, max_epochs=1)
    assert seen == [("1", "2"), ("1", "2")]
    assert dict(os.environ) == before


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"http_timeout": 0}, "'http_timeout'"),
        ({"http_timeout": "10"}, "'http_timeout'"),
        ({"http_max_retries": -1}, "'http_max_retries'"),
        ({"http_max_retries": 1.5}, "'http_max_retries'"),
        ({"guard": object()}, "'guard'"),
        ({"experiment_param": [("a", 1)]}, "'experiment_param'"),
    ],
)
def test_arguments_are_checked(sqlite_uri, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GuardedMLFlowHandler(sqlite_uri, **kwargs)


def test_bundle_settings_follow_monai_default_and_use_the_guarded_handler():
    settings = ConfigParser.load_config_files(str(default_bundle_dir() / "configs" / "mlflow.yaml"))
    assert settings["handlers_id"] == DEFAULT_MLFLOW_SETTINGS["handlers_id"]
    assert set(DEFAULT_MLFLOW_SETTINGS["configs"]) <= set(settings["configs"])
    for kind in ("trainer", "validator", "evaluator"):
        entry = settings["configs"][kind]
        assert entry["_target_"] == "monai_hybrid.engines.GuardedMLFlowHandler"
        assert entry["guard"] == "@tracking_guard"
