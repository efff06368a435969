"""Prepare-batch for MONAI's ``SupervisedTrainer``: noise, timesteps and the targets of every pretraining mode.

It extends MONAI's ``DiffusionPrepareBatch`` (which drops the label) and, like it, returns
``(images, targets, (), {"noise": noise, "timesteps": t})`` for MONAI's ``DiffusionInferer``. The targets are a
dict: ``"image"`` (the diffusion target of ``prediction_type``) when the mode trains the image head, ``"label"``
when it uses labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from monai.engines.utils import DiffusionPrepareBatch, default_prepare_batch
from monai.networks.schedulers import Scheduler

from monai_hybrid.modes import get_mode

__all__ = ["HybridPrepareBatch", "SemiSupervisedPrepareBatch", "PREDICTION_TYPES", "finetuning_prepare_batch"]

PREDICTION_TYPES = ("sample", "epsilon", "v_prediction")


class HybridPrepareBatch(DiffusionPrepareBatch):
    """Noising and targets for hybrid, supervised, diffusion and contrastive pretraining.

    * noised modes (``hybrid``, ``diffusion``): ``eps ~ N(0, I)``, ``t`` uniform in ``[0, T)``; a share
      ``t0_fraction`` of the batch gets ``t = 0``, the timestep of fine-tuning and inference;
    * clean modes (``supervised``, ``contrastive``): no noise, ``t = 0``.

    Args:
        scheduler: the MONAI noise scheduler (its ``num_train_timesteps`` is ``T``; ``get_velocity`` gives the
            v-prediction target).
        mode: ``hybrid``, ``supervised``, ``diffusion`` or ``contrastive``.
        prediction_type: the image head's target: ``sample`` (the clean image, the paper's ``E[x | x_t]``),
            ``epsilon`` (the noise) or ``v_prediction``.
        t0_fraction: share of each batch drawn at ``t = 0`` in noised modes, in ``[0, 1]``.
        image_key: batch key of the image.
        label_key: batch key of the label.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        mode: str = "hybrid",
        prediction_type: str = "sample",
        t0_fraction: float = 0.0,
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        name = type(self).__name__
        if not hasattr(scheduler, "num_train_timesteps") or not hasattr(scheduler, "add_noise"):
            raise ValueError(f"{name}: 'scheduler' must be a MONAI noise scheduler, got {type(scheduler).__name__}.")
        self.mode = get_mode(mode, owner=name)
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"{name}: 'prediction_type' must be one of {PREDICTION_TYPES}, got {prediction_type!r}.")
        if not 0.0 <= float(t0_fraction) <= 1.0:
            raise ValueError(f"{name}: 't0_fraction' must be in [0, 1], got {t0_fraction!r}.")
        super().__init__(num_train_timesteps=int(scheduler.num_train_timesteps))
        self.scheduler = scheduler
        self.prediction_type = prediction_type
        self.t0_fraction = float(t0_fraction)
        self.image_key = image_key
        self.label_key = label_key

    def get_noise(self, images: torch.Tensor) -> torch.Tensor:
        """``eps ~ N(0, I)`` in noised modes, zeros otherwise (so ``x_t`` is the clean image)."""
        return torch.randn_like(images) if self.mode.noised else torch.zeros_like(images)

    def get_timesteps(self, images: torch.Tensor) -> torch.Tensor:
        """Uniform timesteps with a share ``t0_fraction`` at 0 in noised modes, all 0 otherwise."""
        n = images.shape[0]
        if not self.mode.noised:
            return torch.zeros(n, dtype=torch.long, device=images.device)
        t = torch.randint(0, self.num_train_timesteps, (n,), device=images.device).long()
        if self.t0_fraction > 0:
            t = torch.where(torch.rand(n, device=images.device) < self.t0_fraction, torch.zeros_like(t), t)
        return t

    def get_target(self, images: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The image head's target for ``prediction_type``."""
        if self.prediction_type == "sample":
            return images
        if self.prediction_type == "epsilon":
            return noise
        return self.scheduler.get_velocity(images, noise, timesteps)

    def __call__(
        self,
        batchdata: Mapping[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple, dict[str, torch.Tensor]]:
        """Returns ``(images, targets, (), {"noise": noise, "timesteps": t})``.

        ``images`` (N, C, *spatial); ``targets["image"]`` (N, C, *spatial); ``targets["label"]`` (N, 1, *spatial).

        Raises:
            KeyError: the batch has no image, or the mode needs labels and the batch has none.
        """
        name = type(self).__name__
        if not isinstance(batchdata, Mapping) or self.image_key not in batchdata:
            raise KeyError(f"{name}: the batch must be a dict with the key '{self.image_key}'.")
        images, _ = default_prepare_batch({"image": batchdata[self.image_key]}, device, non_blocking, **kwargs)
        targets: dict[str, torch.Tensor] = {}
        if self.mode.uses_labels:
            if self.label_key not in batchdata or batchdata[self.label_key] is None:
                raise KeyError(
                    f"{name}: mode '{self.mode.name}' needs labels, but the batch has no '{self.label_key}'; use a "
                    "labelled datalist or the 'diffusion' mode."
                )
            targets["label"] = batchdata[self.label_key].to(device=device, non_blocking=non_blocking, **kwargs)
        noise = self.get_noise(images)
        timesteps = self.get_timesteps(images)
        if self.mode.image_loss:
            targets["image"] = self.get_target(images, noise, timesteps)
        return images, targets, (), {"noise": noise, "timesteps": timesteps}


class SemiSupervisedPrepareBatch(HybridPrepareBatch):
    """Hybrid fine-tuning that also uses the target site's unlabelled scans.

    Each batch is the labelled batch, clean at ``t = 0`` (mask loss), followed by a batch drawn from
    ``unlabeled_loader``, noised at random timesteps (denoising loss). One forward pass serves both; ``HybridLoss``
    scores the mask logits of the first part and the image prediction of the last.

    Args:
        scheduler: the noise scheduler.
        unlabeled_loader: an iterable of batches of unlabelled images (dicts with ``image_key``); cycled.
        prediction_type: the image head's target.
        image_key: batch key of the image.
        label_key: batch key of the label.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        unlabeled_loader: Any,
        prediction_type: str = "sample",
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        super().__init__(
            scheduler, mode="hybrid", prediction_type=prediction_type, image_key=image_key, label_key=label_key
        )
        if unlabeled_loader is None or not hasattr(unlabeled_loader, "__iter__"):
            raise ValueError(f"{type(self).__name__}: 'unlabeled_loader' must be an iterable of batches.")
        self.unlabeled_loader = unlabeled_loader
        self._iterator = None

    def _next_unlabeled(self) -> Mapping[str, torch.Tensor]:
        for _ in range(2):
            if self._iterator is None:
                self._iterator = iter(self.unlabeled_loader)
            try:
                return next(self._iterator)
            except StopIteration:
                self._iterator = None
        raise ValueError(f"{type(self).__name__}: 'unlabeled_loader' yields no batch; is the unlabeled list empty?")

    def __call__(self, batchdata, device=None, non_blocking=False, **kwargs):
        """Returns ``(images, targets, (), {"noise", "timesteps"})`` with labelled samples first."""
        name = type(self).__name__
        if self.label_key not in batchdata:
            raise KeyError(f"{name}: the labelled batch has no '{self.label_key}'.")
        images, labels = default_prepare_batch(
            {"image": batchdata[self.image_key], "label": batchdata[self.label_key]}, device, non_blocking, **kwargs
        )
        unlabeled = self._next_unlabeled()[self.image_key].to(device=device, non_blocking=non_blocking, **kwargs)
        noise_u = torch.randn_like(unlabeled)
        t_u = torch.randint(0, self.num_train_timesteps, (unlabeled.shape[0],), device=unlabeled.device).long()
        noise = torch.cat([torch.zeros_like(images), noise_u])
        timesteps = torch.cat([torch.zeros(images.shape[0], dtype=torch.long, device=images.device), t_u])
        targets = {"label": labels, "image": self.get_target(unlabeled, noise_u, t_u)}
        return torch.cat([images, unlabeled]), targets, (), {"noise": noise, "timesteps": timesteps}


def finetuning_prepare_batch(
    scheduler: Scheduler, prediction_type: str = "sample", unlabeled_loader: Any = None
) -> HybridPrepareBatch:
    """The prepare-batch of fine-tuning: labelled batches at ``t = 0`` (mask loss), plus noised batches of
    unlabelled scans from ``unlabeled_loader`` when there is one (semi-supervised hybrid fine-tuning).

    Args:
        scheduler: the noise scheduler.
        prediction_type: the image head's target (used with unlabelled scans).
        unlabeled_loader: batches of unlabelled images, or ``None`` (a disabled loader in the config).
    """
    if unlabeled_loader is None:
        return HybridPrepareBatch(scheduler, mode="supervised", prediction_type=prediction_type)
    return SemiSupervisedPrepareBatch(scheduler, unlabeled_loader, prediction_type=prediction_type)
