"""The hybrid loss: ``L = w_img * MSE(x_hat, target) + w_seg * DiceCE(y_logits, y)`` (docs/method.md), plus
``w_pl * CE(y_logits, pseudo-labels)`` on unlabelled scans when fine-tuning with pseudo-labels.

As in improved-diffusion, the loss keeps its terms: ``terms(pred, target)`` returns every term and the total, and
calling the loss returns the total while keeping the last terms in ``last_terms`` for logging (MONAI's
``SupervisedTrainer`` needs a tensor back from its loss function).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss
from torch import nn

__all__ = ["HybridLoss"]


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i v_i / sum_i w_i`` of (N,) ``values`` and ``weights`` (0 when every weight is 0)."""
    weights = weights.to(values)
    return (weights * values).sum() / weights.sum().clamp_min(1e-8)


class HybridLoss(nn.Module):
    """Weighted sum of the image MSE and the mask Dice-CE of a hybrid prediction.

    The prediction holds the image channels first, then the mask logits: ``pred = [x_hat (C) | y_logits (K)]``, as
    ``HybridDiffusionUNet`` returns it. A term whose target is absent, or whose weight is 0, is still reported (when
    its target is present) but adds nothing to the total.

    A target may cover only part of the batch (semi-supervised fine-tuning puts labelled images first and
    unlabelled ones last): a ``label`` of ``N_l`` samples scores ``pred[:N_l]``, an ``image`` of ``N_u`` samples
    scores ``pred[-N_u:]``.

    Per-sample weights (``target["mask_weights"]`` (N_l,), ``target["image_weights"]`` with one weight per sample
    of ``target["image"]``) make a term the
    weighted mean of its per-sample values, ``sum_i w_i l_i / sum_i w_i``: they change how much each sample counts,
    not the size of the term against the other (that is ``image_weight`` and ``mask_weight``). Hybrid pretraining
    weights the mask loss by ``alpha_bar_t`` this way (``engines.noise_levels``).

    Pseudo-labels (``target["pseudo_label"]`` of the last ``N_u`` samples, with per-voxel ``pseudo_weights``) add
    ``w_pl`` times their cross-entropy, ``sum_v w_v CE_v / V`` over the ``V`` voxels of those samples (FixMatch's
    masked mean: a batch with few kept voxels counts for little).

    Args:
        image_channels: ``C``, the number of image channels at the front of the prediction.
        image_weight: ``w_img`` (>= 0).
        mask_weight: ``w_seg`` (>= 0). The paper weights the mask term down relative to a plain segmenter.
        pseudo_label_weight: ``w_pl`` (>= 0).
        dice_ce_kwargs: arguments of MONAI's ``DiceCELoss`` (default: ``to_onehot_y=True, softmax=True``).
    """

    def __init__(
        self,
        image_channels: int,
        image_weight: float = 1.0,
        mask_weight: float = 1.0,
        dice_ce_kwargs: dict[str, Any] | None = None,
        pseudo_label_weight: float = 0.0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(image_channels, int) or image_channels < 1:
            raise ValueError(f"{name}: 'image_channels' must be a positive integer, got {image_channels!r}.")
        weights = (
            ("image_weight", image_weight),
            ("mask_weight", mask_weight),
            ("pseudo_label_weight", pseudo_label_weight),
        )
        for arg, value in weights:
            if not float(value) >= 0.0:
                raise ValueError(f"{name}: '{arg}' must be >= 0, got {value!r}.")
        if float(image_weight) == 0.0 and float(mask_weight) == 0.0:
            raise ValueError(f"{name}: 'image_weight' and 'mask_weight' cannot both be 0.")
        self.image_channels = image_channels
        self.image_weight = float(image_weight)
        self.mask_weight = float(mask_weight)
        self.pseudo_label_weight = float(pseudo_label_weight)
        kwargs = {"to_onehot_y": True, "softmax": True} | (dice_ce_kwargs or {})
        # per-sample weights use Dice + CE with MONAI's defaults: other DiceCE settings would make them disagree
        self._weightable = set(kwargs) <= {"to_onehot_y", "softmax"}
        self.dice_ce = DiceCELoss(**kwargs)
        self.dice = DiceLoss(
            to_onehot_y=kwargs["to_onehot_y"], softmax=kwargs["softmax"], reduction="none"
        )  # per sample, for weights
        self.last_terms: dict[str, torch.Tensor] = {}

    def terms(self, pred: torch.Tensor, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every term of the loss.

        Args:
            pred: (N, C + K, *spatial) image prediction then mask logits.
            target: ``"image"`` (N, C, *spatial) and/or ``"label"`` (N, 1, *spatial) integer labels; optionally
                ``"pseudo_label"`` (N_u, 1, *spatial) with ``"pseudo_weights"`` of the same shape.

        Returns:
            ``loss_image`` (when ``target`` has an image), ``loss_mask`` (when it has a label), ``loss_pseudo``
            (when it has pseudo-labels) and ``loss``, the weighted total.
        """
        if not isinstance(target, dict) or not ({"image", "label", "pseudo_label"} & set(target)):
            raise ValueError(f"{type(self).__name__}: 'target' must be a dict with 'image' and/or 'label'.")
        c = self.image_channels
        if pred.shape[1] <= c:
            raise ValueError(
                f"{type(self).__name__}: 'pred' needs {c} image channels then the mask logits, got {pred.shape[1]} "
                "channels; does the network return output 'all'?"
            )
        out: dict[str, torch.Tensor] = {}
        total = pred.new_zeros(())
        if "image" in target:
            n_u = target["image"].shape[0]
            x_hat = pred[pred.shape[0] - n_u :, :c].float()
            if "image_weights" in target:
                per_sample = ((x_hat - target["image"].float()) ** 2).flatten(1).mean(dim=1)
                out["loss_image"] = _weighted_mean(per_sample, target["image_weights"])
            else:
                out["loss_image"] = F.mse_loss(x_hat, target["image"].float())
            if self.image_weight:
                total = total + self.image_weight * out["loss_image"]
        if "label" in target:
            logits = pred[: target["label"].shape[0], c:].float()
            if "mask_weights" in target:
                if not self._weightable:
                    raise ValueError(
                        f"{type(self).__name__}: per-sample mask weights need the default Dice-CE; 'dice_ce_kwargs' "
                        "sets more than to_onehot_y and softmax (use mask_weighting none)."
                    )
                dice = self.dice(logits, target["label"]).flatten(1).mean(dim=1)
                ce = F.cross_entropy(logits, target["label"][:, 0].long(), reduction="none").flatten(1).mean(dim=1)
                out["loss_mask"] = _weighted_mean(dice + ce, target["mask_weights"])
            else:
                out["loss_mask"] = self.dice_ce(logits, target["label"])
            if self.mask_weight:
                total = total + self.mask_weight * out["loss_mask"]
        if "pseudo_label" in target:
            n_u = target["pseudo_label"].shape[0]
            logits = pred[pred.shape[0] - n_u :, c:].float()
            ce = F.cross_entropy(logits, target["pseudo_label"][:, 0].long(), reduction="none")
            out["loss_pseudo"] = (ce * target["pseudo_weights"][:, 0].to(ce)).mean()
            if self.pseudo_label_weight:
                total = total + self.pseudo_label_weight * out["loss_pseudo"]
        out["loss"] = total
        return out

    def forward(self, pred: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted total (a scalar); the terms are kept in ``last_terms``."""
        terms = self.terms(pred, target)
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        return terms["loss"]
