"""Lesion metrics of the MICCAI 2017 WMH segmentation challenge, per case, in mm and ml from the reference's affine.

Kuijf et al., "Standardized Assessment of Automatic Segmentation of White Matter Hyperintensities and Results of the
WMH Segmentation Challenge", IEEE TMI 38(11):2556-2568, 2019. On the binary lesion masks of one case:

* ``dice``: ``2 |P & R| / (|P| + |R|)`` (MONAI's ``compute_dice``);
* lesions are the connected components of a mask with full connectivity (26 neighbours in 3D, 8 in 2D), so two
  voxels that touch only at a corner are one lesion;
* ``recall``: reference lesions that any predicted voxel overlaps, over the reference lesions;
* ``f1``: ``2 precision recall / (precision + recall)``, precision being the predicted lesions that overlap the
  reference mask over the predicted lesions (1 when nothing is predicted, as in the challenge's script; F1 is 0 when
  both are 0);
* ``avd_percent``: ``|V_pred - V_ref| / V_ref * 100``;
* ``hd95_mm``: the 95th percentile Hausdorff distance in mm (MONAI's ``compute_hausdorff_distance`` with the
  reference's spacing). A prediction without any lesion scores the volume's diagonal, the project's rule for a
  missed class (``monai_hybrid.metrics``); the challenge's script gives ``nan`` there, which a mean would drop;
* ``fp_ml``: the predicted lesion volume outside the reference lesion mask, in ml (what
  ``monai_hybrid.metrics.false_positive_volume_ml`` gives with no margin, here in 2D too).

Volumes come from the full affine: a 2D slice that keeps its volume's affine (as MONAI's slicing does) has voxels
as thick as the slice.

A case whose reference has no lesion has nothing to overlap, detect or compare volumes with: ``dice``, ``recall``,
``f1``, ``avd_percent`` and ``hd95_mm`` are ``nan`` (left out of means, which count the cases they average), never a
perfect or a null score, and ``fp_ml`` (then the whole predicted lesion volume) with ``n_pred`` says what the
prediction did there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance
from scipy import ndimage

from monai_hybrid.metrics import spacing_mm, volume_diagonal_mm

__all__ = ["LESION_COLUMNS", "LesionScores", "label_lesions", "lesion_scores"]

#: The columns of ``LesionScores.as_row``, in report order.
LESION_COLUMNS: tuple[str, ...] = (
    "lesion_dice",
    "lesion_recall",
    "lesion_f1",
    "lesion_avd_percent",
    "lesion_hd95_mm",
    "lesion_fp_ml",
    "n_ref_lesions",
    "n_pred_lesions",
)


def label_lesions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The lesions of a binary mask: connected components with full connectivity (26 in 3D, 8 in 2D).

    Args:
        mask: boolean (H, W) or (H, W, D).

    Returns:
        The component of each voxel (0 outside the mask, 1..n inside) and the count ``n``.

    Raises:
        ValueError: ``mask`` is neither 2D nor 3D.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim not in (2, 3):
        raise ValueError(f"label_lesions: 'mask' must be 2D or 3D, got shape {mask.shape}.")
    labels, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, mask.ndim))
    return labels, int(count)


@dataclass(frozen=True)
class LesionScores:
    """The lesion metrics of one case (see the module docstring; ``nan`` where the reference has no lesion)."""

    dice: float
    recall: float
    f1: float
    avd_percent: float
    hd95_mm: float
    fp_ml: float
    n_ref: int
    n_pred: int

    def as_row(self) -> dict[str, float | int]:
        """The scores under the report's column names (``LESION_COLUMNS``)."""
        values = (self.dice, self.recall, self.f1, self.avd_percent, self.hd95_mm, self.fp_ml, self.n_ref, self.n_pred)
        return dict(zip(LESION_COLUMNS, values, strict=True))


def _overlapping(labels: np.ndarray, other: np.ndarray) -> int:
    """How many components of ``labels`` share at least one voxel with the mask ``other``."""
    return int(np.count_nonzero(np.unique(labels[other])))


def lesion_scores(y_pred: torch.Tensor, y: torch.Tensor, channel: int) -> LesionScores:
    """The lesion metrics of one case from one-hot prediction and reference.

    Args:
        y_pred: one-hot prediction (K, *spatial), 2D or 3D spatial.
        y: one-hot reference (K, *spatial) carrying its affine (a MetaTensor, as ``LoadImaged`` makes it): the
            spacing of HD95, volumes and the diagonal.
        channel: the lesion class's channel, 1..K-1.

    Returns:
        The case's ``LesionScores``.

    Raises:
        ValueError: shapes differ, the spatial dimensions are neither 2 nor 3, ``channel`` is out of range, or ``y``
            has no affine.
    """
    if y_pred.shape != y.shape:
        raise ValueError(f"lesion_scores: y_pred {tuple(y_pred.shape)} and y {tuple(y.shape)} differ.")
    if y.ndim not in (3, 4):
        raise ValueError(f"lesion_scores: expected one-hot (K, *spatial), 2 or 3 spatial dims; got {tuple(y.shape)}.")
    if not 1 <= channel < y.shape[0]:
        raise ValueError(f"lesion_scores: 'channel' must be in 1..{y.shape[0] - 1} (0 is background), got {channel}.")
    affine_spacing = spacing_mm(y)
    spacing = affine_spacing[: y.ndim - 1]  # in-plane only for a 2D slice with its volume's affine
    voxel_ml = math.prod(affine_spacing) / 1000.0
    pred = torch.as_tensor(y_pred)[channel].detach().cpu().numpy() > 0.5
    ref = torch.as_tensor(y)[channel].detach().cpu().numpy() > 0.5
    ref_labels, n_ref = label_lesions(ref)
    pred_labels, n_pred = label_lesions(pred)
    fp_ml = np.count_nonzero(pred & ~ref) * voxel_ml
    if n_ref == 0:  # nothing to overlap or compare with: only the false positives are scored
        nan = math.nan
        return LesionScores(nan, nan, nan, nan, nan, fp_ml, 0, n_pred)

    pred_t = torch.from_numpy(pred)[None, None].float()  # (1, 1, *spatial)
    ref_t = torch.from_numpy(ref)[None, None].float()
    dice = float(compute_dice(pred_t, ref_t, include_background=True)[0, 0])
    recall = _overlapping(ref_labels, pred) / n_ref
    precision = _overlapping(pred_labels, ref) / n_pred if n_pred else 1.0
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    n_ref_voxels, n_pred_voxels = int(ref.sum()), int(pred.sum())  # the voxel volume cancels out of the AVD
    avd = abs(n_pred_voxels - n_ref_voxels) / n_ref_voxels * 100.0
    if n_pred:
        hd = compute_hausdorff_distance(pred_t, ref_t, include_background=True, percentile=95, spacing=spacing)
        hd95 = float(hd[0, 0])
    else:
        hd95 = volume_diagonal_mm(tuple(ref.shape), spacing)
    return LesionScores(dice, recall, f1, avd, hd95, fp_ml, n_ref, n_pred)
