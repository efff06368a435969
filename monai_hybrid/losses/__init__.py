"""Losses of the pretraining modes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from monai_hybrid.losses.contrastive import PixelContrastiveLoss
from monai_hybrid.losses.hybrid import HybridLoss
from monai_hybrid.modes import get_mode

__all__ = ["HybridLoss", "PixelContrastiveLoss", "class_weight_tensor", "finetuning_loss", "pretraining_loss"]


def pretraining_loss(
    mode: str,
    image_channels: int,
    image_weight: float = 1.0,
    mask_weight: float = 1.0,
    temperature: float = 0.07,
    pixels_per_class: int = 64,
) -> nn.Module:
    """The loss of a pretraining ``mode``.

    ``hybrid`` uses both weights; ``supervised`` only the mask term (weight 1), ``diffusion`` only the image term
    (weight 1), ``contrastive`` the pixel contrastive loss with ``temperature``.
    """
    spec = get_mode(mode, owner="pretraining_loss")
    if spec.contrastive:
        return PixelContrastiveLoss(temperature=temperature, pixels_per_class=pixels_per_class)
    if not spec.image_loss:  # supervised
        return HybridLoss(image_channels, image_weight=0.0, mask_weight=1.0)
    if not spec.mask_loss:  # diffusion
        return HybridLoss(image_channels, image_weight=1.0, mask_weight=0.0)
    return HybridLoss(image_channels, image_weight=image_weight, mask_weight=mask_weight)


def class_weight_tensor(class_names: Sequence[str], class_weights: Mapping[str, float] | None) -> torch.Tensor | None:
    """The weight of each class in Dice-CE, in ``class_names`` order: ``class_weights`` names the classes that differ
    from 1 (``{"lesion": 20.0}``: a rare class learned from a few scans).

    Returns:
        A tensor of shape (K,) for K ``class_names``, or ``None`` when ``class_weights`` is empty (every class 1).

    Raises:
        ValueError: ``class_weights`` is not a mapping, names a class not in ``class_names``, or holds a weight that is
            not a positive number.
    """
    if not class_weights:
        return None
    if not isinstance(class_weights, Mapping):
        raise ValueError(
            f"'class_weights' must map class names to weights, e.g. {{'lesion': 20.0}}; got {class_weights!r}."
        )
    unknown = [name for name in class_weights if name not in class_names]
    if unknown:
        raise ValueError(f"'class_weights' names {unknown}, which are not in 'class_names' {list(class_names)}.")
    bad = {k: v for k, v in class_weights.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0}
    if bad:
        raise ValueError(f"'class_weights' must be positive numbers; got {bad}.")
    return torch.tensor([float(class_weights.get(name, 1.0)) for name in class_names])


def finetuning_loss(
    image_channels: int,
    unlabeled_weight: float = 0.0,
    dice_ce_kwargs: dict | None = None,
    class_names: Sequence[str] = (),
    class_weights: Mapping[str, float] | None = None,
    pseudo_labels: bool = False,
) -> HybridLoss:
    """The fine-tuning loss: Dice-CE on the labelled scans at t = 0, plus ``unlabeled_weight`` times the unlabelled
    scans' term when it is above 0: the denoising MSE on noised unlabelled scans (semi-supervised hybrid
    fine-tuning), or with ``pseudo_labels`` the masked cross-entropy of the mean teacher's labels
    (``engines.PseudoLabeler``). ``dice_ce_kwargs``: more arguments of MONAI's ``DiceCELoss`` (``{"batch": True}``:
    each class's Dice over the whole batch, as ``--loss#dice_ce_kwargs "{'batch': True}"``). ``class_weights``: the
    classes of ``class_names`` whose Dice-CE weight is not 1 (MONAI's ``weight``, applied to the Dice and the
    cross-entropy of each class, not to the pseudo-labels' term), as ``--class_weights "{'lesion': 20.0}"``."""
    if not float(unlabeled_weight) >= 0.0:
        raise ValueError(f"finetuning_loss: 'unlabeled_weight' must be >= 0, got {unlabeled_weight!r}.")
    per_class = class_weight_tensor(class_names, class_weights)
    if per_class is not None:
        dice_ce_kwargs = {**(dice_ce_kwargs or {}), "weight": per_class}
    unlabeled = float(unlabeled_weight)
    return HybridLoss(
        image_channels,
        image_weight=0.0 if pseudo_labels else unlabeled,
        mask_weight=1.0,
        dice_ce_kwargs=dice_ce_kwargs,
        pseudo_label_weight=unlabeled if pseudo_labels else 0.0,
    )
