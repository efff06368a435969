"""Losses of the pretraining modes."""

from __future__ import annotations

from torch import nn

from monai_hybrid.losses.contrastive import PixelContrastiveLoss
from monai_hybrid.losses.hybrid import HybridLoss
from monai_hybrid.modes import get_mode

__all__ = ["HybridLoss", "PixelContrastiveLoss", "pretraining_loss", "finetuning_loss"]


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


def finetuning_loss(
    image_channels: int, unlabeled_weight: float = 0.0, dice_ce_kwargs: dict | None = None
) -> HybridLoss:
    """The fine-tuning loss: Dice-CE on the labelled scans at t = 0, plus ``unlabeled_weight`` times the denoising
    MSE on noised unlabelled scans (semi-supervised hybrid fine-tuning) when it is above 0. ``dice_ce_kwargs``: more
    arguments of MONAI's ``DiceCELoss`` (``{"batch": True}``: each class's Dice over the whole batch, as
    ``--loss#dice_ce_kwargs "{'batch': True}"``)."""
    if not float(unlabeled_weight) >= 0.0:
        raise ValueError(f"finetuning_loss: 'unlabeled_weight' must be >= 0, got {unlabeled_weight!r}.")
    return HybridLoss(
        image_channels, image_weight=float(unlabeled_weight), mask_weight=1.0, dice_ce_kwargs=dice_ce_kwargs
    )
