"""Where a benchmark keeps its results: ``results.json``, written after every run (a killed benchmark resumes where it
stopped), and optionally MLflow."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from monai_hybrid.atomic_write import write_text_atomic

__all__ = ["RESULTS_FILE", "MlflowSink", "ResultStore"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))


class ResultStore:
    """The runs of one benchmark in ``<out_dir>/results.json``, saved atomically after each one.

    Args:
        out_dir: the benchmark's folder.
        preset: the preset (a dataclass), saved in the file's header; a file of another preset is refused.
        header: more header entries (the datalists, the class names).
        sinks: called with every recorded run (``MlflowSink``).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        preset: Any,
        header: Mapping[str, Any] | None = None,
        sinks: tuple[Callable[[dict], None], ...] = (),
    ) -> None:
        self.path = Path(out_dir) / RESULTS_FILE
        self.preset = preset
        self.header = dict(header or {})
        self.sinks = sinks
        self.runs: list[dict] = []

    def load(self) -> None:
        """Read the runs already done (resume).

        Raises:
            ValueError: the file holds another preset's benchmark.
        """
        if not self.path.is_file():
            return
        saved = json.loads(self.path.read_text())
        name = saved.get("preset", {}).get("name")
        if name not in (None, self.preset.name):
            raise ValueError(f"'{self.path}' holds a '{name}' benchmark; use another output folder.")
        if hasattr(self.preset, "run_settings"):
            now = _jsonable(self.preset.run_settings())
            stored = saved.get("preset", {})
            changed = {k: (stored[k], v) for k, v in now.items() if stored.get(k, v) != v}
            if changed:
                raise ValueError(
                    f"'{self.path}' holds runs made with other settings of preset '{name}' (setting: (saved, now)): "
                    f"{changed}. Resuming would mix the two in one table; use another output folder."
                )
        self.runs = saved.get("runs", [])
        logger.info("Resuming: %d runs already done in %s", len(self.runs), self.path)

    def done(self, key: str) -> dict | None:
        """The recorded run called ``key``, if any."""
        return next((r for r in self.runs if r["key"] == key), None)

    def record(self, run: dict) -> None:
        """Add ``run``, save the file and hand the run to the sinks."""
        self.runs.append(run)
        payload = {"preset": _jsonable(self.preset), **_jsonable(self.header), "runs": self.runs}
        write_text_atomic(self.path, json.dumps(payload, indent=2))
        for sink in self.sinks:
            sink(run)


class MlflowSink:
    """Logs each run to MLflow (``<out_dir>/mlruns.db``, experiment ``monai-hybrid-benchmark-<preset>``); a tracking
    failure is a warning, never the end of the benchmark.

    Args:
        out_dir: the benchmark's folder.
        preset_name: names the experiment.
    """

    PARAMS = ("kind", "method", "budget", "seed", "steps", "pretrained", "eval_list")

    def __init__(self, out_dir: str | os.PathLike, preset_name: str) -> None:
        self.out_dir = Path(out_dir).resolve()
        self.experiment = f"monai-hybrid-benchmark-{preset_name}"

    def __call__(self, run: dict) -> None:
        try:
            import mlflow

            client = mlflow.MlflowClient(f"sqlite:///{self.out_dir / 'mlruns.db'}")
            experiment = client.get_experiment_by_name(self.experiment)
            experiment_id = (
                experiment.experiment_id
                if experiment
                else client.create_experiment(self.experiment, artifact_location=(self.out_dir / "mlruns").as_uri())
            )
            mlrun = client.create_run(experiment_id, run_name=run["key"])
            for k in self.PARAMS:
                if run.get(k) is not None:
                    client.log_param(mlrun.info.run_id, k, run[k])
            for k, v in run.items():
                if isinstance(v, float) and v == v:  # skip NaN
                    client.log_metric(mlrun.info.run_id, k, v)
            client.set_terminated(mlrun.info.run_id)
        except Exception as err:  # tracking must never stop the benchmark
            logger.warning("MLflow logging of %s failed (%s); the results are in results.json.", run.get("key"), err)
