"""HD95 in millimetres from the reference label's own voxel spacing, with an explicit score for a missed class.

MONAI's ``HausdorffDistance`` handler measures in voxels unless it is given a spacing, and it has no way to take one
per case from the data; a class that the prediction misses (or that the reference lacks) yields ``inf`` or ``nan``
there, which a mean then drops silently. ``HausdorffDistance95mm``:

* reads the spacing of each case from its reference's affine (a MetaTensor, as ``LoadImaged`` makes it), so a
  2-voxel shift on a 3 x 3 x 4.5 mm grid along the last axis scores 9 mm, not 2;
* scores a class that is empty in exactly one of prediction and reference with the diagonal of the volume in mm
  (the largest distance two voxels of it can have), so a miss costs the most a prediction can cost;
* leaves a class empty in both as ``nan`` (nothing to score), excluded from means and counted apart.

``missed_classes`` tells, per case and class, whether the class was empty in exactly one of the two, so reports can
give the count of misses beside HD95.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric, compute_hausdorff_distance
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = [
    "FAR_MARGIN_MM",
    "HausdorffDistance95mm",
    "false_positive_volume_ml",
    "missed_classes",
    "spacing_mm",
    "volume_diagonal_mm",
]

#: Predicted foreground farther than this from the reference's foreground is a *far* false positive (mm).
FAR_MARGIN_MM = 10.0


def spacing_mm(image: Any) -> list[float]:
    """The voxel spacing (mm) of ``image`` (C, *spatial) or (N, C, *spatial), from its affine.

    Raises:
        ValueError: ``image`` has no affine (not a MetaTensor); the distances would be in voxels.
    """
    affine = getattr(image, "affine", None)
    if affine is None:
        raise ValueError(
            "spacing_mm: the reference has no affine (not a MetaTensor), so HD95 cannot be given in mm; load the "
            "label with LoadImaged and keep its metadata."
        )
    affine = torch.as_tensor(affine, dtype=torch.float64)
    if affine.ndim == 3:  # batched: every case of a batch of one
        affine = affine[0]
    dims = affine.shape[-1] - 1
    return [float(v) for v in torch.linalg.norm(affine[:dims, :dims], dim=0)]


def volume_diagonal_mm(shape: tuple[int, ...], spacing: list[float]) -> float:
    """The largest distance between two voxels of a volume of ``shape`` with ``spacing`` (mm)."""
    return math.sqrt(sum(((n - 1) * s) ** 2 for n, s in zip(shape, spacing, strict=True)))


def missed_classes(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = False) -> torch.Tensor:
    """Per case and class: 1 where the class is empty in exactly one of ``y_pred`` and ``y``, else 0.

    Args:
        y_pred, y: one-hot (N, K, *spatial).
        include_background: keep channel 0.

    Returns:
        (N, K) or (N, K - 1) float tensor.
    """
    start = 0 if include_background else 1
    dims = tuple(range(2, y.ndim))
    pred_empty = y_pred[:, start:].sum(dim=dims) == 0
    ref_empty = y[:, start:].sum(dim=dims) == 0
    return (pred_empty ^ ref_empty).float()


def false_positive_volume_ml(y_pred: torch.Tensor, y: torch.Tensor, margin_mm: float = 0.0) -> float:
    """Volume (ml) of predicted foreground lying more than ``margin_mm`` outside the reference's foreground.

    With ``margin_mm = 0`` every predicted foreground voxel outside the reference brain counts (boundary errors
    included); with ``FAR_MARGIN_MM`` only what lies far from the brain counts: background noise, scalp or neck
    labelled as brain, which Dice barely sees. Distances are Euclidean, in mm from the reference's affine.

    Args:
        y_pred: one-hot prediction (K, *spatial), channel 0 background.
        y: one-hot reference (K, *spatial) carrying its affine (a MetaTensor).
        margin_mm: distance from the reference foreground beyond which a predicted voxel counts (>= 0).

    Returns:
        The volume in millilitres (1 ml = 1000 mm^3).

    Raises:
        ValueError: shapes differ, ``margin_mm`` is negative, or ``y`` has no affine.
    """
    import numpy as np
    from scipy import ndimage

    if margin_mm < 0:
        raise ValueError(f"false_positive_volume_ml: 'margin_mm' must be >= 0, got {margin_mm}.")
    if y_pred.shape != y.shape:
        raise ValueError(f"false_positive_volume_ml: y_pred {tuple(y_pred.shape)} and y {tuple(y.shape)} differ.")
    spacing = spacing_mm(y)
    pred_fg = torch.as_tensor(y_pred)[1:].sum(0).detach().cpu().numpy() > 0
    ref_fg = torch.as_tensor(y)[1:].sum(0).detach().cpu().numpy() > 0
    if not ref_fg.any():  # no reference foreground: every predicted voxel is far from it
        outside = pred_fg
    else:
        distance = ndimage.distance_transform_edt(~ref_fg, sampling=spacing)
        outside = pred_fg & (distance > margin_mm)
    return float(np.count_nonzero(outside) * float(np.prod(spacing)) / 1000.0)


class HausdorffDistance95mm(CumulativeIterationMetric):
    """The 95th percentile Hausdorff distance in mm, per case and class (see the module docstring for the rules).

    Args:
        include_background: score channel 0 too.
        reduction: MONAI's reduction of the per-case, per-class values (``nan`` excluded).
        get_not_nans: ``aggregate`` also returns the count of values that were not ``nan``.
    """

    def __init__(
        self,
        include_background: bool = False,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__()
        self.include_background = include_background
        self.reduction = reduction
        self.get_not_nans = get_not_nans

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """(N, K') distances (mm) of one-hot ``y_pred`` and ``y`` (N, K, *spatial); ``y`` carries the affine."""
        if y_pred.shape != y.shape:
            raise ValueError(f"{type(self).__name__}: y_pred {tuple(y_pred.shape)} and y {tuple(y.shape)} differ.")
        spacing = spacing_mm(y)
        pred, ref = torch.as_tensor(y_pred).float(), torch.as_tensor(y).float()
        start = 0 if self.include_background else 1
        dims = tuple(range(2, ref.ndim))
        missed = missed_classes(pred, ref, self.include_background).bool()
        hd = torch.full(missed.shape, float("nan"), dtype=torch.float32, device=pred.device)
        both = (pred[:, start:].sum(dim=dims) > 0) & (ref[:, start:].sum(dim=dims) > 0)
        if both.any():
            values = compute_hausdorff_distance(
                pred, ref, include_background=self.include_background, percentile=95, spacing=spacing
            ).to(hd.device)
            hd[both] = values[both]
        hd[missed] = volume_diagonal_mm(tuple(ref.shape[2:]), spacing)
        return hd

    def aggregate(self, reduction: MetricReduction | str | None = None) -> Any:
        """The reduced distances (and the count of values that were not ``nan`` with ``get_not_nans``)."""
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"{type(self).__name__}: the buffer holds no results yet.")
        value, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (value, not_nans) if self.get_not_nans else value
