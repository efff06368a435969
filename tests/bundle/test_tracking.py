from __future__ import annotations

import mlflow
import pytest

from tests.bundle.conftest import BUNDLE, PRETRAIN, run_config

SETTINGS = str(BUNDLE / "configs" / "mlflow.yaml")  # --tracking configs/mlflow.yaml

pytestmark = pytest.mark.slow


def test_mlflow_records_params_loss_terms_metrics_and_config(bundle_root):
    uri = f"sqlite:///{bundle_root / 'mlruns.db'}"
    run_config(
        "pretrain",
        PRETRAIN,
        bundle_root,
        tracking=SETTINGS,
        tracking_uri=uri,
        experiment_name="pretrain_test",
        run_name="tiny",
        epochs=2,
    )
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("pretrain_test")
    run = client.search_runs(experiment.experiment_id)[0]
    assert run.info.run_name == "tiny" and run.info.status == "FINISHED"
    assert run.data.params["mode"] == "hybrid" and run.data.params["t0_fraction"] == "0.5"  # the method, whole
    assert run.data.params["synthesis"] == "False" and run.data.params["intensity_augmentation"] == "False"
    metrics = run.data.metrics
    assert {
        "train_loss",
        "loss_image",
        "loss_mask",
        "epoch_loss",
        "epoch_loss_image",
        "epoch_loss_mask",
        "val_mean_dice",
        "val_denoise_mse",
    } <= set(metrics)
    for term in ("train_loss", "loss_image", "loss_mask"):  # every iteration
        assert len(client.get_metric_history(run.info.run_id, term)) == 4
    assert len(client.get_metric_history(run.info.run_id, "epoch_loss_mask")) == 2  # every epoch
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert any(a.startswith("config_") and a.endswith(".json") for a in artifacts)


def test_unreachable_tracking_server_warns_and_training_goes_on(bundle_root, caplog):
    import logging

    caplog.set_level(logging.WARNING)
    wf = run_config("pretrain", PRETRAIN, bundle_root, tracking=SETTINGS, tracking_uri="http://127.0.0.1:9", epochs=2)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.iteration == 4
    assert (bundle_root / "models" / "pretrain" / "model_final.pt").is_file()
    assert "MLflow tracking failed" in caplog.text
