"""HD95 in mm from the label's own spacing, and the explicit score of a missed class, with distances by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from monai.handlers import IgniteMetricHandler
from monai.metrics import compute_hausdorff_distance

from monai_hybrid.metrics import HausdorffDistance95mm, missed_classes, spacing_mm, volume_diagonal_mm

SPACING = (3.0, 3.0, 4.5)


def _one_hot(labels: np.ndarray, k: int = 3) -> MetaTensor:
    """(K, *spatial) one-hot of ``labels`` with an anisotropic, rotated-free affine of ``SPACING``."""
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = (-40.0, 12.0, 7.5)
    hot = np.stack([labels == c for c in range(k)]).astype(np.float32)
    return MetaTensor(torch.from_numpy(hot), affine=torch.from_numpy(affine))


def _volumes() -> tuple[np.ndarray, np.ndarray]:
    """Class 1: a one-voxel-thick plate at z = 3 in the reference and z = 5 in the prediction (2 voxels = 9 mm
    apart along the 4.5 mm axis: every surface voxel's nearest counterpart is 9 mm away). Class 2: a block present in
    both, identical."""
    ref = np.zeros((10, 12, 9), dtype=np.int64)
    pred = np.zeros_like(ref)
    ref[2:7, 3:9, 3] = 1
    pred[2:7, 3:9, 5] = 1
    ref[7:9, 1:3, 1:3] = pred[7:9, 1:3, 1:3] = 2
    return pred, ref


def test_hd95_is_in_mm_from_the_reference_affine():
    pred, ref = _volumes()
    hd = HausdorffDistance95mm()(_one_hot(pred)[None], _one_hot(ref)[None])
    assert hd.shape == (1, 2)
    assert hd[0, 0].item() == pytest.approx(2 * 4.5)  # by hand: 2 voxels of 4.5 mm
    assert hd[0, 1].item() == pytest.approx(0.0)
    # what an HD95 without spacing reports for the same shift: voxels
    in_voxels = compute_hausdorff_distance(_one_hot(pred)[None], _one_hot(ref)[None], percentile=95)
    assert in_voxels[0, 0].item() == pytest.approx(2.0)


def test_a_class_the_prediction_misses_scores_the_volume_diagonal_and_is_counted():
    pred, ref = _volumes()
    pred[pred == 1] = 0  # class 1 missed
    diagonal = math.sqrt((9 * 3.0) ** 2 + (11 * 3.0) ** 2 + (8 * 4.5) ** 2)
    assert volume_diagonal_mm((10, 12, 9), list(SPACING)) == pytest.approx(diagonal)
    hd = HausdorffDistance95mm()(_one_hot(pred)[None], _one_hot(ref)[None])
    assert hd[0, 0].item() == pytest.approx(diagonal) and hd[0, 1].item() == pytest.approx(0.0)
    assert missed_classes(_one_hot(pred)[None], _one_hot(ref)[None]).tolist() == [[1.0, 0.0]]


def test_a_class_absent_from_both_is_not_scored():
    pred, ref = _volumes()
    pred[pred == 2] = 0
    ref[ref == 2] = 0
    hd = HausdorffDistance95mm()(_one_hot(pred)[None], _one_hot(ref)[None])
    assert math.isnan(hd[0, 1].item()) and missed_classes(_one_hot(pred)[None], _one_hot(ref)[None])[0, 1] == 0


def test_the_ignite_handler_keeps_each_case_spacing_and_details():
    pred, ref = _volumes()
    engine = Engine(lambda e, batch: batch)  # outputs lists of MetaTensors, as from_engine gives them
    IgniteMetricHandler(metric_fn=HausdorffDistance95mm(), save_details=True).attach(engine, "hd95")
    engine.run([([_one_hot(pred), _one_hot(pred)], [_one_hot(ref), _one_hot(ref)])], max_epochs=1)
    assert engine.state.metrics["hd95"] == pytest.approx((9.0 + 0.0) / 2)
    assert engine.state.metric_details["hd95"].tolist() == [[9.0, 0.0], [9.0, 0.0]]


def test_a_reference_without_affine_is_refused():
    with pytest.raises(ValueError, match="no affine"):
        spacing_mm(torch.zeros(1, 2, 4, 4, 4))


def test_false_positive_volume_outside_the_brain_by_hand():
    """Reference brain: x in 2..4. Predicted foreground: the same block plus one voxel 2 voxels (6 mm) beyond it
    and one 5 voxels (15 mm) beyond it, on 3 x 3 x 4.5 mm voxels (40.5 mm^3 each)."""
    from monai_hybrid.metrics import FAR_MARGIN_MM, false_positive_volume_ml

    ref = np.zeros((12, 6, 5), dtype=np.int64)
    ref[2:5, 1:4, 1:4] = 1
    pred = ref.copy()
    pred[6, 2, 2] = 2  # 6 mm from the brain: outside it, not far
    pred[9, 2, 2] = 1  # 15 mm: far
    y_pred, y = _one_hot(pred), _one_hot(ref)
    assert false_positive_volume_ml(y_pred, y) == pytest.approx(2 * 40.5 / 1000)
    assert false_positive_volume_ml(y_pred, y, margin_mm=FAR_MARGIN_MM) == pytest.approx(40.5 / 1000)
    assert false_positive_volume_ml(y, y) == 0.0
    with pytest.raises(ValueError, match="'margin_mm' must be >= 0"):
        false_positive_volume_ml(y_pred, y, margin_mm=-1)
