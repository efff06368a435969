"""Ignite handlers that log what the stock MONAI handlers do not: the loss terms and the run's parameters."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents

__all__ = [
    "LossTermsHandler",
    "MetricsHistory",
    "ModelSettingsWriter",
    "TrackingParamsHandler",
    "TrainingProgressBar",
    "every",
    "handler_entries",
    "loss_terms",
    "replace_handler",
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


def _guarded(handler: Any, state: dict) -> Any:
    """``handler`` that warns once and goes quiet when the tracking server fails, instead of stopping the run."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if state["failed"]:
            return None
        try:
            return handler(*args, **kwargs)
        except Exception as err:
            state["failed"] = True
            logger.warning(
                "MLflow tracking failed (%s: %s); training goes on without tracking.",
                type(err).__name__,
                str(err).splitlines()[0][:200] if str(err) else "",
            )
            return None

    return call


def _origin(handler: Any) -> Any:
    """The handler as attached (ignite wraps filtered handlers and keeps a weak reference to them)."""
    parent = getattr(handler, "_parent", None)
    return parent() if callable(parent) else handler


def handler_entries(engine: Engine):
    """Every ``(event, index, handler)`` attached to ``engine``, in the order ignite calls them.

    ignite has no public API to list an engine's handlers (``has_event_handler`` needs the handler already known)
    or to replace one in place, so this reads ``Engine._event_handlers``: a dict of event -> list of
    ``(handler, args, kwargs)``. ``tests/engines/test_ignite_assumptions.py`` checks that layout directly, so an
    ignite upgrade that changes it fails there, by name, rather than in a tracking run.
    """
    for event, entries in engine._event_handlers.items():
        for i, (handler, _args, _kwargs) in enumerate(entries):
            yield event, i, handler


def replace_handler(engine: Engine, event: Any, index: int, handler: Any) -> None:
    """Put ``handler`` in the place of the ``index``-th handler of ``event`` (same arguments, same order).

    In place rather than ``remove_event_handler`` + ``add_event_handler``: this runs while ignite iterates the
    STARTED handlers, and moving a handler to the end of the list would change which handlers that loop calls.
    """
    _, args, kwargs = engine._event_handlers[event][index]
    engine._event_handlers[event][index] = (handler, args, kwargs)


def _mlflow_entries(engine: Engine):
    from monai.handlers import MLFlowHandler

    for event, i, handler in handler_entries(engine):
        if isinstance(getattr(_origin(handler), "__self__", None), MLFlowHandler):
            yield event, i, handler


class TrackingParamsHandler:
    """Makes MONAI's ``--tracking mlflow`` record the run's settings and every loss term, and never stop training.

    MONAI's bundle tracking appends an ``MLFlowHandler`` to ``train#handlers`` (and ``validate#handlers``) that logs
    only the total loss each iteration, no parameters of the method, and raises when the tracking server cannot be
    reached. Attached before it (earlier in ``train#handlers``), this handler, when the run starts:

    * gives it ``params`` (logged as MLflow parameters) and an output transform that returns every ``loss*`` term
      (the total keeps the handler's tag, ``train_loss``);
    * wraps the MLflow handlers of the trainer and of its validators so that a tracking failure logs one warning
      and turns tracking off, and training goes on (with one HTTP attempt and a 10 s timeout unless the
      ``MLFLOW_HTTP_REQUEST_*`` environment variables say otherwise).

    Without tracking it does nothing.

    Args:
        params: name -> value (numbers, strings, lists) to record.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = {str(k): (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in dict(params).items()}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._hand_over)

    def _hand_over(self, engine: Engine) -> None:
        import os

        from monai.handlers import ValidationHandler

        engines = [engine]
        for _, _, handler in list(handler_entries(engine)):
            owner = _origin(handler)
            owner = getattr(owner, "__self__", owner)
            if isinstance(owner, ValidationHandler) and owner.validator is not None:
                engines.append(owner.validator)
        found = False
        state = {"failed": False}
        for e in engines:
            for event, i, handler in list(_mlflow_entries(e)):
                found = True
                owner = _origin(handler).__self__
                if e is engine and event == Events.STARTED:
                    owner.experiment_param = {**(owner.experiment_param or {}), **self.params}
                    tag = owner.tag_name

                    def terms(output: Any, tag: str = tag) -> dict[str, float]:
                        return {(tag if k == "loss" else k): v for k, v in loss_terms(output).items()}

                    owner.output_transform = terms
                replace_handler(e, event, i, _guarded(handler, state))
        if found:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


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
    with other settings is evaluated and served with its own (``monai_hybrid.model_settings``).

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

    def __call__(self, engine: Engine) -> None:
        import ignite.distributed as idist

        from monai_hybrid.model_settings import save_model_settings

        if idist.get_rank() > 0:  # one writer under DDP
            return
        path = save_model_settings(self.settings, self.folder)
        logger.info("Model settings written to '%s'.", path)


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
        import json
        import os
        from pathlib import Path

        import ignite.distributed as idist

        if idist.get_rank() > 0:  # the metrics are gathered over ranks: rank 0 writes them, alone
            return
        path = Path(self.path)
        history = json.loads(path.read_text()) if path.is_file() else []
        entry = {"epoch": int(engine.state.epoch)}
        entry.update({k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float))})
        history = [h for h in history if h.get("epoch") != entry["epoch"]] + [entry]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(history, indent=1))
        os.replace(tmp, path)
