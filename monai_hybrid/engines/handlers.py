"""Ignite handlers that log what the stock MONAI handlers do not: the loss terms and the run's parameters."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.handlers import MLFlowHandler

from monai_hybrid.atomic_write import write_text_atomic

__all__ = [
    "GuardedMLFlowHandler",
    "LossTermsHandler",
    "MetricsHistory",
    "ModelSettingsWriter",
    "TrackingGuard",
    "TrainingProgressBar",
    "every",
    "loss_terms",
]

logger = logging.getLogger(__name__)


def loss_terms(output: Any) -> dict[str, float]:
    """Output transform for ``StatsHandler``: every ``loss*`` entry of the trainer's output as a float.

    Works on a collated output dict (``decollate=False``) and on a decollated list of dicts.
    """
    if isinstance(output, list):
        output = output[0] if output else {}
    return {
        k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
        for k, v in output.items()
        if k.startswith("loss") and v is not None
    }


class LossTermsHandler:
    """Copies the loss's terms into the trainer's output each iteration and averages them over each epoch.

    The loss must keep its last terms in ``last_terms`` (``HybridLoss`` and ``PixelContrastiveLoss`` do). Each
    iteration the terms join ``engine.state.output`` (``loss_image``, ``loss_mask``, ...), where ``StatsHandler``
    with ``output_transform=loss_terms`` logs them; at the end of each epoch their means go to
    ``engine.state.metrics`` as ``<prefix><term>``, where ``StatsHandler`` and MLflow's handler record them.

    Args:
        loss: the loss function of the trainer.
        prefix: prefix of the epoch metrics' names.
    """

    def __init__(self, loss: Any, prefix: str = "epoch_") -> None:
        if not hasattr(loss, "last_terms"):
            raise ValueError(
                f"{type(self).__name__}: 'loss' must keep its terms in 'last_terms', {type(loss).__name__} does not."
            )
        self.loss = loss
        self.prefix = prefix
        self._sums: dict[str, float] = {}
        self._count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self._copy)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._completed)

    def _reset(self, engine: Engine) -> None:
        self._sums, self._count = {}, 0

    def _copy(self, engine: Engine) -> None:
        terms = {k: v for k, v in self.loss.last_terms.items() if k != "loss"}
        if isinstance(engine.state.output, dict):
            engine.state.output.update(terms)

    def _accumulate(self, engine: Engine) -> None:
        for k, v in self.loss.last_terms.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
        self._count += 1

    def _completed(self, engine: Engine) -> None:
        for k, v in self._sums.items():
            engine.state.metrics[f"{self.prefix}{k}"] = v / max(self._count, 1)


@contextmanager
def _scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Sets ``values`` in ``os.environ`` for the block, then restores what was there (names that were unset are
    unset again)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class TrackingGuard:
    """The switch that the MLflow handlers of one run share: the first tracking failure logs one warning and turns
    them all off, and training goes on.

    A bundle's tracking settings create one (``tracking_guard``) and hand it to the trainer's and the validator's
    ``GuardedMLFlowHandler``, so an unreachable server gives one warning per run, not one per handler.
    """

    def __init__(self) -> None:
        self.failed = False

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``; ``None`` without calling it once tracking is off, and after the failure that turns it off."""
        if self.failed:
            return None
        try:
            return fn(*args)
        except Exception as err:  # tracking must never stop training
            self.failed = True
            first_line = str(err).splitlines()[0][:200] if str(err) else ""
            logger.warning(
                "MLflow tracking failed (%s: %s); training goes on without tracking.", type(err).__name__, first_line
            )
            return None


class GuardedMLFlowHandler(MLFlowHandler):
    """MONAI's ``MLFlowHandler`` that records every loss term and never stops training.

    The handler of this bundle's tracking settings (``configs/mlflow.yaml``, used as ``--tracking
    configs/mlflow.yaml``); MONAI's own ``--tracking mlflow`` keeps its stock handler. Differences from the stock one:

    * each iteration it logs every ``loss*`` entry of the engine's output (``loss_image``, ``loss_mask``, ...), the
      total under ``tag_name`` (unless ``output_transform`` is given);
    * the first failure of a tracking call (server down, refused, timed out) logs one warning and turns tracking off
      for every handler sharing ``guard``; the engine runs on;
    * each HTTP request to the tracking server waits at most ``http_timeout`` seconds and is retried
      ``http_max_retries`` times. MLflow 3.17 takes these only from ``MLFLOW_HTTP_REQUEST_TIMEOUT`` and
      ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, read at each request (its client has no arguments for them), so the
      handler sets both during its own calls and restores the previous values (or their absence) right after: the
      process environment is left as it was, and other MLflow clients keep their settings.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``http(s)://...``); see ``MLFlowHandler``.
        http_timeout: seconds to wait for the tracking server, per HTTP request (> 0).
        http_max_retries: retries of a failed HTTP request (>= 0; MLflow waits longer before each).
        guard: the ``TrackingGuard`` shared by the handlers of one run; ``None``: one of its own.
        output_transform: engine output -> scalar or ``{name: scalar}`` logged each iteration; ``None``: every
            ``loss*`` term of the output, the total as ``tag_name``.
        experiment_param: name -> value logged as the run's MLflow parameters when the engine starts (tensors as
            lists); ``None``: none but MONAI's ``max_epochs`` and ``epoch_length``.
        kwargs: the other arguments of ``monai.handlers.MLFlowHandler`` (``experiment_name``, ``run_name``,
            ``iteration_log``, ``tag_name``, ``artifacts``, ``close_on_complete``, ...).

    Raises:
        ValueError: an argument is out of range or of the wrong type.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        http_timeout: float = 10.0,
        http_max_retries: int = 0,
        guard: TrackingGuard | None = None,
        output_transform: Callable[[Any], Any] | None = None,
        experiment_param: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if isinstance(http_timeout, bool) or not isinstance(http_timeout, (int, float)) or not http_timeout > 0:
            raise ValueError(f"{name}: 'http_timeout' must be a number of seconds > 0, got {http_timeout!r}.")
        if isinstance(http_max_retries, bool) or not isinstance(http_max_retries, int) or http_max_retries < 0:
            raise ValueError(f"{name}: 'http_max_retries' must be an int >= 0, got {http_max_retries!r}.")
        if guard is not None and not isinstance(guard, TrackingGuard):
            raise ValueError(f"{name}: 'guard' must be a TrackingGuard or None, got {type(guard).__name__}.")
        if experiment_param is not None and not isinstance(experiment_param, Mapping):
            raise ValueError(f"{name}: 'experiment_param' must be a mapping, got {type(experiment_param).__name__}.")
        params = None
        if experiment_param is not None:
            params = {str(k): (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in experiment_param.items()}
        super().__init__(
            tracking_uri,
            output_transform=self._loss_terms if output_transform is None else output_transform,
            experiment_param=params,
            **kwargs,
        )
        self.http_timeout = http_timeout
        self.http_max_retries = http_max_retries
        self.guard = guard if guard is not None else TrackingGuard()

    def _loss_terms(self, output: Any) -> dict[str, float] | None:
        terms = {(self.tag_name if k == "loss" else k): v for k, v in loss_terms(output).items()}
        return terms or None

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> Any:
        http = {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.http_timeout),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.http_max_retries),
        }
        with _scoped_environ(http):
            return self.guard.call(fn, *args)

    def start(self, engine: Engine) -> None:
        self._guarded(super().start, engine)

    def iteration_completed(self, engine: Engine) -> None:
        self._guarded(super().iteration_completed, engine)

    def epoch_completed(self, engine: Engine) -> None:
        self._guarded(super().epoch_completed, engine)

    def complete(self) -> None:
        self._guarded(super().complete)

    def close(self) -> None:
        self._guarded(super().close)


class TrainingProgressBar:
    """Ignite's tqdm ``ProgressBar`` over each epoch's iterations, showing the loss terms.

    MONAI's bundle handlers are attached with ``handler.attach(engine)`` alone; this passes the output transform
    (every ``loss*`` term of the trainer's output) that ignite's ``attach`` takes as an argument.

    Args:
        persist: keep each epoch's bar on screen when it ends.
        disable: no bar (e.g. in a log file, or on ranks other than 0).
    """

    def __init__(self, persist: bool = False, disable: bool = False) -> None:
        self.persist = persist
        self.disable = disable

    def attach(self, engine: Engine) -> None:
        if self.disable:
            return
        from ignite.handlers import ProgressBar

        ProgressBar(persist=self.persist).attach(engine, output_transform=loss_terms)


def every(n: int):
    """Event filter for ``StatsHandler(iteration_log=...)``: log every ``n``-th iteration (and none when n < 1)."""
    n = int(n)
    return lambda engine, iteration: n > 0 and iteration % n == 0


class ModelSettingsWriter:
    """Writes the model-defining settings beside the checkpoints when training starts (``model_settings.json``).

    ``inference.yaml`` and ``evaluate.yaml`` read them from the folder of the model they load, so a model trained
    with other settings is evaluated and served with its own (``monai_hybrid.model_settings``). When the folder
    already holds models (``*.pt``) whose settings differ from this run's (a class added to a served model, as a
    MONAI Label Train does), those settings stay until the run completes, when its final model replaces the served
    one: a server that loads the old model meanwhile reads the old settings, not the new class count.

    Args:
        settings: the resolved ``model_settings`` of the bundle config.
        folder: the checkpoint folder (``ckpt_dir``).

    Raises:
        ValueError: a setting is missing or malformed (checked here, before any training step).
    """

    def __init__(self, settings: Mapping[str, Any], folder: str) -> None:
        from monai_hybrid.model_settings import check_model_settings

        self.settings = check_model_settings(settings, f"{type(self).__name__} 'settings'")
        self.folder = folder

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def _differs_from_models_there(self) -> bool:
        from monai_hybrid.model_settings import SETTINGS_FILE

        folder = Path(self.folder)
        path = folder / SETTINGS_FILE
        if not path.is_file() or not any(folder.glob("*.pt")):
            return False
        try:
            there = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        return there != json.loads(json.dumps(self.settings))

    def _write(self) -> None:
        from monai_hybrid.model_settings import save_model_settings

        path = save_model_settings(self.settings, self.folder)
        logger.info("Model settings written to '%s'.", path)

    def __call__(self, engine: Engine) -> None:
        import ignite.distributed as idist

        if idist.get_rank() > 0:  # one writer under DDP
            return
        if self._differs_from_models_there():
            # registered now, after the checkpoint savers: the settings follow the final model, never precede it
            engine.add_event_handler(Events.COMPLETED, self._completed)
            logger.info(
                "'%s' holds models with other settings (model_settings.json there); this run's settings are written "
                "when it completes, with its final model.",
                self.folder,
            )
            return
        self._write()

    def _completed(self, engine: Engine) -> None:
        engine.remove_event_handler(self._completed, Events.COMPLETED)
        self._write()


class MetricsHistory:
    """Appends an evaluator's metrics to a JSON list after each of its runs: the validation curve of a training run.

    Each entry is ``{"epoch": <the trainer's epoch>, <metric>: <value>, ...}``; the file is rewritten atomically, by
    rank 0 alone under DDP.

    Args:
        path: the JSON file (``<ckpt_dir>/validation_history.json``); an existing one is continued (resume).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        import ignite.distributed as idist

        if idist.get_rank() > 0:  # the metrics are gathered over ranks: rank 0 writes them, alone
            return
        path = Path(self.path)
        history = json.loads(path.read_text()) if path.is_file() else []
        entry = {"epoch": int(engine.state.epoch)}
        entry.update({k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float))})
        history = [h for h in history if h.get("epoch") != entry["epoch"]] + [entry]
        write_text_atomic(path, json.dumps(history, indent=1))
