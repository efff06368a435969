"""Per-case and summary evaluation reports (CSV and JSON) from the metrics of a MONAI evaluator."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ignite.engine import Engine, Events

from monai_hybrid.lesion_metrics import lesion_scores
from monai_hybrid.metrics import FAR_MARGIN_MM, false_positive_volume_ml, missed_classes

__all__ = ["EvaluationReport"]

logger = logging.getLogger(__name__)


def _name(item: dict, root: str | None = None) -> str:
    """The case name of ``item``: its image's file name without the suffix, below ``root`` its path from there
    (``study1/t1``), as ``SaveImaged`` with ``data_root_dir`` names the prediction."""
    image = item.get("image")
    meta = getattr(image, "meta", {}) or {}
    path = str(meta.get("filename_or_obj", "")).rstrip("/")
    if not path:
        return "case"
    base = os.path.relpath(path, root).replace(os.sep, "/") if root else os.path.basename(path)
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


class EvaluationReport:
    """Writes ``metrics.csv`` and ``metrics.json``: Dice per class, mean foreground Dice, HD95 (mm) per class and
    their mean, the classes missed and the false-positive volume outside the brain, per case; and the mean and
    standard deviation over cases.

    The evaluator's Dice and HD95 metrics (``include_background=False``) keep their per-case, per-class values in
    ``engine.state.metric_details`` (``save_details=True``, MONAI's default); this handler pairs them with the case
    names. A class empty in exactly one of prediction and reference is *missed*: ``missed_<class>`` is 1 and
    ``n_missed`` counts them (``monai_hybrid.metrics``; its HD95 is the volume's diagonal, never dropped). A class
    empty in both has no HD95 (``nan``), and the means over cases leave it out (``n`` says how many were scored).
    ``fp_outside_ml`` is the predicted foreground outside the reference's foreground, ``fp_far_ml`` the part of it
    farther than ``FAR_MARGIN_MM`` (10 mm) from it, in ml from the label's own spacing.

    With a ``lesion_class``, each case also gets the lesion metrics of the MICCAI 2017 WMH challenge
    (``monai_hybrid.lesion_metrics``, Kuijf et al. 2019): ``lesion_dice``, ``lesion_recall``, ``lesion_f1``,
    ``lesion_avd_percent``, ``lesion_hd95_mm``, ``lesion_fp_ml``, ``n_ref_lesions`` and ``n_pred_lesions``. A case
    whose reference has no lesion scores ``nan`` on the first five (left out of the means, ``n`` counts the others)
    and its false-positive lesion volume in ``lesion_fp_ml``.

    Args:
        output_dir: folder of the reports.
        class_names: all class names, background first.
        dice_metric: name of the Dice metric in the evaluator.
        hd95_metric: name of the HD95 metric (``None``: no HD95).
        pred_key, reference_key: one-hot prediction and reference in the engine's output, for the missed classes
            (``None``: not counted).
        lesion_class: the class scored with the lesion metrics, one of ``class_names`` (``None``: no lesion
            metrics); needs ``pred_key`` and ``reference_key``.
        data_root_dir: the folder that holds every input (``monai_hybrid.data.input_root``): a case is named by its
            path below it, as its prediction is saved (``None`` or ``""``: by its file name).

    Raises:
        ValueError: fewer than two class names, a ``lesion_class`` that is background or not among them, or a
            ``lesion_class`` without ``pred_key`` and ``reference_key``.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        dice_metric: str,
        hd95_metric: str | None = None,
        pred_key: str | None = "pred",
        reference_key: str | None = "reference",
        lesion_class: str | None = None,
        data_root_dir: str | os.PathLike | None = None,
    ) -> None:
        if len(class_names) < 2:
            raise ValueError(f"{type(self).__name__}: 'class_names' needs background and at least one class.")
        if lesion_class is not None:
            if lesion_class not in list(class_names)[1:]:
                raise ValueError(
                    f"{type(self).__name__}: 'lesion_class' {lesion_class!r} is not a foreground class of "
                    f"{list(class_names)}; name one of them, or None (null in YAML) for no lesion metrics."
                )
            if pred_key is None or reference_key is None:
                raise ValueError(
                    f"{type(self).__name__}: 'lesion_class' needs 'pred_key' and 'reference_key' (the one-hot "
                    "prediction and reference in the engine's output)."
                )
        self.output_dir = Path(output_dir)
        self.classes = list(class_names)[1:]
        self.dice_metric = dice_metric
        self.hd95_metric = hd95_metric
        self.pred_key = pred_key
        self.reference_key = reference_key
        self.lesion_channel = None if lesion_class is None else list(class_names).index(lesion_class)
        self.data_root_dir = str(data_root_dir) if data_root_dir else None
        self._names: list[str] = []
        self._missed: list[np.ndarray] = []
        self._fp_ml: list[tuple[float, float]] = []
        self._lesions: list[dict] = []
        self.summary: dict = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self._names.clear()
        self._missed.clear()
        self._fp_ml.clear()
        self._lesions.clear()

    def _collect(self, engine: Engine) -> None:
        batch = engine.state.batch
        self._names += [_name(item, self.data_root_dir) for item in (batch if isinstance(batch, list) else [batch])]
        if self.pred_key is None or self.reference_key is None:
            return
        output = engine.state.output
        for item in output if isinstance(output, list) else [output]:
            pred, ref = item[self.pred_key], item[self.reference_key]
            self._missed.append(missed_classes(pred[None], ref[None])[0].cpu().numpy())
            self._fp_ml.append(
                (false_positive_volume_ml(pred, ref), false_positive_volume_ml(pred, ref, margin_mm=FAR_MARGIN_MM))
            )
            if self.lesion_channel is not None:
                self._lesions.append(lesion_scores(pred, ref, self.lesion_channel).as_row())

    def _details(self, engine: Engine, name: str | None) -> np.ndarray | None:
        if name is None:
            return None
        details = engine.state.metric_details.get(name)
        if details is None:
            raise KeyError(f"{type(self).__name__}: the evaluator has no details of metric '{name}'.")
        return np.asarray(details.detach().cpu() if hasattr(details, "detach") else details, dtype=np.float64)

    def _write(self, engine: Engine) -> None:
        dice = self._details(engine, self.dice_metric)
        hd95 = self._details(engine, self.hd95_metric)
        rows = []
        for i, case in enumerate(self._names):
            row: dict = {"case": case}
            for c, cls in enumerate(self.classes):
                row[f"dice_{cls}"] = float(dice[i, c])
            row["mean_fg_dice"] = float(np.nanmean(dice[i]))
            if hd95 is not None:
                for c, cls in enumerate(self.classes):
                    row[f"hd95_{cls}"] = float(hd95[i, c])
                row["mean_hd95"] = float(np.nanmean(hd95[i]))
            if self._missed:
                for c, cls in enumerate(self.classes):
                    row[f"missed_{cls}"] = float(self._missed[i][c])
                row["n_missed"] = float(self._missed[i].sum())
            if self._fp_ml:
                row["fp_outside_ml"], row["fp_far_ml"] = self._fp_ml[i]
            if self._lesions:
                row.update(self._lesions[i])
            rows.append(row)
        columns = [k for k in rows[0] if k != "case"] if rows else []
        summary = {}
        for col in columns:
            values = np.asarray([r[col] for r in rows], dtype=np.float64)
            finite = values[np.isfinite(values)]
            summary[col] = {
                "mean": float(finite.mean()) if finite.size else math.nan,
                "std": float(finite.std()) if finite.size else math.nan,
                "n": int(finite.size),
            }
        self.summary = summary
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["case", *columns])
            writer.writeheader()
            writer.writerows(rows)
            for stat in ("mean", "std"):
                writer.writerow({"case": stat, **{c: summary[c][stat] for c in columns}})
        (self.output_dir / "metrics.json").write_text(json.dumps({"cases": rows, "summary": summary}, indent=2))
        if "mean_fg_dice" in summary:
            logger.info(
                "Mean foreground Dice over %d cases: %.4f +- %.4f (written to %s)",
                len(rows),
                summary["mean_fg_dice"]["mean"],
                summary["mean_fg_dice"]["std"],
                self.output_dir,
            )
