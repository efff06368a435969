"""The WMH challenge's lesion metrics (Kuijf et al. 2019) on tiny volumes, every value computed by hand, and their
columns in the evaluation report."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.handlers import MeanDice, from_engine

from monai_hybrid.bundle import default_bundle_dir
from monai_hybrid.engines import EvaluationReport
from monai_hybrid.lesion_metrics import LESION_COLUMNS, label_lesions, lesion_scores
from monai_hybrid.metrics import volume_diagonal_mm

LESION = 2  # channel of the lesion class in [background, tissue, lesion]


def _one_hot(labels: np.ndarray, spacing=(1.0, 1.0, 2.0), k: int = 3) -> MetaTensor:
    """(K, *spatial) one-hot of ``labels`` with a diagonal affine of ``spacing`` (mm)."""
    affine = np.diag([*spacing, 1.0])
    hot = np.stack([labels == c for c in range(k)]).astype(np.float32)
    return MetaTensor(torch.from_numpy(hot), affine=torch.from_numpy(affine))


def _two_lesions_one_detected() -> tuple[np.ndarray, np.ndarray]:
    """Reference: lesion A, a 2 x 2 x 2 block (8 voxels), and lesion B, one voxel. Prediction: 4 voxels inside A
    (B missed) and two false lesions of one voxel each, far from everything."""
    ref = np.zeros((8, 8, 8), dtype=np.int64)
    ref[1:3, 1:3, 1:3] = LESION
    ref[6, 6, 6] = LESION
    pred = np.zeros_like(ref)
    pred[1:3, 1:3, 1] = LESION
    pred[6, 1, 6] = pred[1, 6, 6] = LESION
    return pred, ref


def test_recall_f1_dice_and_fp_volume_by_hand():
    pred, ref = _two_lesions_one_detected()
    scores = lesion_scores(_one_hot(pred), _one_hot(ref), LESION)
    assert (scores.n_ref, scores.n_pred) == (2, 3)
    assert scores.recall == pytest.approx(1 / 2)  # A detected, B missed
    precision = 1 / 3  # one of three predicted lesions overlaps the reference
    assert scores.f1 == pytest.approx(2 * precision * 0.5 / (precision + 0.5))  # = 0.4
    assert scores.f1 == pytest.approx(0.4)
    assert scores.dice == pytest.approx(2 * 4 / (6 + 9))
    assert scores.avd_percent == pytest.approx(abs(6 - 9) / 9 * 100)
    assert scores.fp_ml == pytest.approx(2 * (1.0 * 1.0 * 2.0) / 1000)  # 2 voxels of 2 mm^3


def test_26_connectivity_makes_a_diagonal_pair_one_lesion():
    ref = np.zeros((5, 5, 5), dtype=np.int64)
    ref[1, 1, 1] = ref[2, 2, 2] = LESION  # touching at a corner only
    pred = np.zeros_like(ref)
    pred[2, 2, 2] = LESION
    scores = lesion_scores(_one_hot(pred), _one_hot(ref), LESION)
    assert scores.n_ref == 1 and scores.recall == 1.0  # with 6-connectivity: 2 lesions, recall 0.5
    labels, count = label_lesions(np.eye(4, dtype=bool))  # 2D: a diagonal line, 8-connected
    assert count == 1 and set(np.unique(labels)) == {0, 1}


def test_a_2d_slice_uses_8_connectivity_its_in_plane_spacing_and_its_thickness():
    """A (K, H, W) slice keeping its volume's affine (0.5 x 0.5 mm pixels, 3 mm thick)."""
    ref = np.zeros((6, 6), dtype=np.int64)
    ref[1, 1] = ref[2, 2] = ref[4, 4] = LESION  # two lesions: a diagonal pair and a single pixel
    pred = np.zeros_like(ref)
    pred[2, 2] = pred[4, 0] = LESION  # one detection, one false lesion
    scores = lesion_scores(_one_hot(pred, (0.5, 0.5, 3.0)), _one_hot(ref, (0.5, 0.5, 3.0)), LESION)
    assert (scores.n_ref, scores.n_pred) == (2, 2) and scores.recall == 0.5 and scores.f1 == pytest.approx(0.5)
    assert scores.fp_ml == pytest.approx(0.5 * 0.5 * 3.0 / 1000)
    # nearest distances (mm), prediction to reference: 0 and 1.414 (from (4, 0) to (2, 2)); reference to prediction:
    # 0.707, 0 and 1.414; the 95th percentile (linear) of each is 0.95 * 1.414
    assert scores.hd95_mm == pytest.approx(0.95 * math.sqrt(2.0), rel=1e-5)


def test_avd_and_hd95_with_anisotropic_spacing_by_hand():
    spacing = (0.5, 1.0, 3.0)  # voxel: 1.5 mm^3
    ref = np.zeros((6, 6, 6), dtype=np.int64)
    ref[1:3, 1:6, 2] = LESION  # 10 voxels = 15 mm^3
    pred = ref.copy()
    pred[1:3, 1:3, 3] = LESION  # 4 more, one slice up (3 mm): 14 voxels = 21 mm^3
    scores = lesion_scores(_one_hot(pred, spacing), _one_hot(ref, spacing), LESION)
    assert scores.avd_percent == pytest.approx(abs(21.0 - 15.0) / 15.0 * 100)  # = 40
    assert scores.fp_ml == pytest.approx(4 * 1.5 / 1000)
    assert scores.n_ref == scores.n_pred == 1 and scores.recall == scores.f1 == 1.0
    # the 4 added voxels lie 3 mm from the reference (1 slice of 3 mm); 4 of the 14 predicted surface voxels is
    # over 5 %, so that direction's 95th percentile is 3 mm; every reference voxel is on the prediction (0 mm)
    assert scores.hd95_mm == pytest.approx(3.0)


def test_a_subject_without_reference_lesion_reports_its_false_positive_volume_not_a_score():
    ref = np.zeros((6, 6, 6), dtype=np.int64)
    pred = np.zeros_like(ref)
    pred[2, 2, 1:4] = LESION  # one lesion of 3 voxels of 2 mm^3
    scores = lesion_scores(_one_hot(pred), _one_hot(ref), LESION)
    for value in (scores.dice, scores.recall, scores.f1, scores.avd_percent, scores.hd95_mm):
        assert math.isnan(value)  # not 1.0, not 0.0
    assert scores.fp_ml == pytest.approx(3 * 2.0 / 1000)
    assert (scores.n_ref, scores.n_pred) == (0, 1)


def test_empty_prediction_and_empty_reference():
    empty = np.zeros((4, 5, 6), dtype=np.int64)
    both = lesion_scores(_one_hot(empty), _one_hot(empty), LESION)
    assert math.isnan(both.dice) and math.isnan(both.recall) and math.isnan(both.hd95_mm)
    assert (both.fp_ml, both.n_ref, both.n_pred) == (0.0, 0, 0)

    ref = empty.copy()
    ref[1, 1, 1] = LESION
    missed = lesion_scores(_one_hot(empty), _one_hot(ref), LESION)
    assert (missed.dice, missed.recall, missed.f1, missed.avd_percent, missed.fp_ml) == (0.0, 0.0, 0.0, 100.0, 0.0)
    assert missed.hd95_mm == pytest.approx(volume_diagonal_mm((4, 5, 6), [1.0, 1.0, 2.0]))  # a miss costs the most
    assert (missed.n_ref, missed.n_pred) == (1, 0)


def test_as_row_names_the_report_columns():
    pred, ref = _two_lesions_one_detected()
    row = lesion_scores(_one_hot(pred), _one_hot(ref), LESION).as_row()
    assert tuple(row) == LESION_COLUMNS
    assert row["lesion_recall"] == 0.5 and row["n_ref_lesions"] == 2 and row["n_pred_lesions"] == 3


@pytest.mark.parametrize(
    "pred_shape, ref_shape, channel, message",
    [
        ((3, 4, 4, 4), (3, 4, 4, 5), LESION, "differ"),
        ((3, 4), (3, 4), LESION, "2 or 3 spatial dims"),
        ((3, 4, 4, 4), (3, 4, 4, 4), 0, "'channel' must be in 1..2"),
        ((3, 4, 4, 4), (3, 4, 4, 4), 3, "'channel' must be in 1..2"),
    ],
)
def test_bad_arguments_are_refused(pred_shape, ref_shape, channel, message):
    y = MetaTensor(torch.zeros(ref_shape), affine=torch.eye(4))
    with pytest.raises(ValueError, match=message):
        lesion_scores(torch.zeros(pred_shape), y, channel)


def test_a_reference_without_affine_is_refused():
    with pytest.raises(ValueError, match="no affine"):
        lesion_scores(torch.zeros(3, 4, 4, 4), torch.zeros(3, 4, 4, 4), LESION)


def test_label_lesions_refuses_a_1d_mask():
    with pytest.raises(ValueError, match="'mask' must be 2D or 3D"):
        label_lesions(np.ones(4, dtype=bool))


# ---- the evaluation report --------------------------------------------------------------------------------------


def _case(name: str, pred: np.ndarray, ref: np.ndarray) -> tuple[dict, dict]:
    image = MetaTensor(torch.zeros(1, *ref.shape), meta={"filename_or_obj": f"/data/{name}.nii.gz"})
    return {"image": image}, {"pred": _one_hot(pred), "reference": _one_hot(ref)}


def _run_report(tmp_path, lesion_class):
    """Two cases through an engine with MONAI's MeanDice and the report: the two-lesion case, and a case whose
    reference has tissue but no lesion while the prediction has a 3-voxel lesion."""
    pred1, ref1 = _two_lesions_one_detected()
    ref2 = np.zeros((6, 6, 6), dtype=np.int64)
    ref2[3:5, 3:5, 3:5] = 1
    pred2 = ref2.copy()
    pred2[1, 1, 1:4] = LESION
    batches = [_case("sub-01", pred1, ref1), _case("sub-02", pred2, ref2)]
    outputs = iter([b[1] for b in batches])  # the engine's output of each iteration; its batch: a list of one case
    engine = Engine(lambda e, batch: [next(outputs)])
    MeanDice(include_background=False, output_transform=from_engine(["pred", "reference"])).attach(engine, "dice")
    EvaluationReport(tmp_path, ["background", "tissue", "lesion"], "dice", lesion_class=lesion_class).attach(engine)
    engine.run([[b[0]] for b in batches], max_epochs=1)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((tmp_path / "metrics.json").read_text())


def test_the_report_writes_the_lesion_columns_per_case_and_in_the_summary(tmp_path):
    rows, report = _run_report(tmp_path, "lesion")
    header = list(rows[0])
    assert header[-len(LESION_COLUMNS) :] == list(LESION_COLUMNS)
    first, second = report["cases"]
    assert (first["case"], second["case"]) == ("sub-01", "sub-02")
    assert first["lesion_recall"] == 0.5 and first["lesion_f1"] == pytest.approx(0.4)
    assert first["lesion_fp_ml"] == pytest.approx(0.004) and first["n_pred_lesions"] == 3
    assert math.isnan(second["lesion_dice"]) and math.isnan(second["lesion_recall"])
    assert second["lesion_fp_ml"] == pytest.approx(3 * 2.0 / 1000) and second["n_ref_lesions"] == 0
    summary = report["summary"]
    assert summary["lesion_dice"] == {"mean": pytest.approx(8 / 15), "std": 0.0, "n": 1}  # the NaN left out
    assert summary["lesion_fp_ml"]["n"] == 2 and summary["lesion_fp_ml"]["mean"] == pytest.approx((0.004 + 0.006) / 2)
    assert rows[1]["lesion_dice"] == "nan" and rows[2]["case"] == "mean"


def test_without_a_lesion_class_the_report_is_unchanged(tmp_path):
    rows, report = _run_report(tmp_path, None)
    columns = ["case", "dice_tissue", "dice_lesion", "mean_fg_dice", "missed_tissue", "missed_lesion", "n_missed"]
    assert list(rows[0]) == [*columns, "fp_outside_ml", "fp_far_ml"]
    assert not any(k.startswith("lesion_") for k in report["summary"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lesion_class": "wmh"}, "'lesion_class' 'wmh' is not a foreground class"),
        ({"lesion_class": "background"}, "'lesion_class' 'background' is not a foreground class"),
        ({"lesion_class": "lesion", "reference_key": None}, "'lesion_class' needs 'pred_key' and 'reference_key'"),
    ],
)
def test_the_report_refuses_a_lesion_class_it_cannot_score(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvaluationReport(tmp_path, ["background", "tissue", "lesion"], "dice", **kwargs)


@pytest.mark.parametrize(
    "class_names, expected",
    [(["background", "csf", "grey_matter", "white_matter", "lesion"], "lesion"), (["background", "csf"], None)],
)
def test_the_evaluate_config_scores_lesions_when_the_model_has_the_class(class_names, expected):
    configs = default_bundle_dir() / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "inference.yaml"), str(configs / "evaluate.yaml")])
    parser["class_names"] = class_names
    assert parser.get_parsed_content("lesion_class") == expected
    parser.get_parsed_content("imports")
    (report,) = [h for h in parser.get_parsed_content("handlers") if isinstance(h, EvaluationReport)]
    assert report.lesion_channel == (None if expected is None else class_names.index(expected))
