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

from monai_hybrid.engines.noise_levels import TimestepSampler, mask_weights
from monai_hybrid.modes import get_mode
from monai_hybrid.options import MaskWeighting, PredictionType, choose

__all__ = ["HybridPrepareBatch", "finetuning_prepare_batch"]


class HybridPrepareBatch(DiffusionPrepareBatch):
    """Noising and targets for hybrid, supervised, diffusion and contrastive training, optionally with a batch of
    unlabelled images appended for the denoising loss.

    * noised modes (``hybrid``, ``diffusion``): ``eps ~ N(0, I)``, timesteps from a ``TimestepSampler``
      (``timestep_distribution``, ``t_max``, ``t0_fraction``);
    * clean modes (``supervised``, ``contrastive``): no noise, ``t = 0``;
    * with ``unlabeled_loader``: a batch of unlabelled images follows the labelled one, always noised, with the
      denoising target only (hybrid pretraining on the target site's unlabelled scans; semi-supervised fine-tuning
      with ``mode="supervised"``). Its samples weigh ``unlabeled_weight`` in the image loss against the labelled
      ones' 1 (``targets["image_weights"]``);
    * with ``unlabeled_loader`` and ``pseudo_labeler`` (fine-tuning, ``mode="supervised"``): the unlabelled batch
      follows clean (t = 0) with the teacher's labels instead of a denoising target (``targets["pseudo_label"]`` and
      the per-voxel ``targets["pseudo_weights"]``, see ``PseudoLabeler``).

    With ``mask_weighting="alpha_bar"`` the mask loss of each labelled sample is weighted by ``alpha_bar_t``
    (``targets["mask_weights"]``, see ``noise_levels``).

    Args:
        scheduler: the MONAI noise scheduler (``num_train_timesteps``, ``alphas_cumprod``, ``get_velocity``).
        mode: ``hybrid``, ``supervised``, ``diffusion`` or ``contrastive``.
        prediction_type: the image head's target: ``sample`` (the clean image, the paper's ``E[x | x_t]``),
            ``epsilon`` (the noise) or ``v_prediction``.
        t0_fraction: share of each noised batch drawn at ``t = 0``, in ``[0, 1]``.
        timestep_distribution: ``uniform``, ``truncated`` or ``lognormal``.
        t_max: upper bound (exclusive) of ``truncated``.
        mask_weighting: ``none`` or ``alpha_bar``.
        unlabeled_loader: an iterable of batches of unlabelled images (dicts with ``image_key``), cycled; ``None``:
            labelled batches only.
        unlabeled_weight: weight of an unlabelled sample in the image loss against a labelled one's 1 (>= 0).
        pseudo_labeler: a ``PseudoLabeler`` that labels the unlabelled batches (fine-tuning only); ``None``: they are
            denoised.
        image_key: batch key of the image.
        label_key: batch key of the label.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        mode: str = "hybrid",
        prediction_type: str = "sample",
        t0_fraction: float = 0.0,
        timestep_distribution: str = "uniform",
        t_max: int | None = None,
        mask_weighting: str = "none",
        unlabeled_loader: Any = None,
        unlabeled_weight: float = 1.0,
        pseudo_labeler: Any = None,
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        name = type(self).__name__
        if not hasattr(scheduler, "num_train_timesteps") or not hasattr(scheduler, "add_noise"):
            raise ValueError(f"{name}: 'scheduler' must be a MONAI noise scheduler, got {type(scheduler).__name__}.")
        self.mode = get_mode(mode, owner=name)
        prediction_type = choose(prediction_type, PredictionType, name, "prediction_type")
        if not 0.0 <= float(t0_fraction) <= 1.0:
            raise ValueError(f"{name}: 't0_fraction' must be in [0, 1], got {t0_fraction!r}.")
        mask_weighting = choose(mask_weighting, MaskWeighting, name, "mask_weighting")
        if unlabeled_loader is not None and not hasattr(unlabeled_loader, "__iter__"):
            raise ValueError(f"{name}: 'unlabeled_loader' must be an iterable of batches or None.")
        if unlabeled_loader is not None and self_mode_contrastive(mode):
            raise ValueError(
                f"{name}: mode 'contrastive' cannot use unlabelled scans (its loss pairs every sample with a label); "
                "set unlabeled_weight to 0."
            )
        if pseudo_labeler is not None:
            if not callable(pseudo_labeler):
                raise ValueError(f"{name}: 'pseudo_labeler' must be a PseudoLabeler or None.")
            if unlabeled_loader is None:
                raise ValueError(f"{name}: 'pseudo_labeler' labels unlabelled scans; it needs an 'unlabeled_loader'.")
            if self.mode.noised:
                raise ValueError(f"{name}: pseudo-labels are for fine-tuning (mode 'supervised'), not mode {mode!r}.")
        if not float(unlabeled_weight) >= 0:
            raise ValueError(f"{name}: 'unlabeled_weight' must be >= 0, got {unlabeled_weight!r}.")
        super().__init__(num_train_timesteps=int(scheduler.num_train_timesteps))
        self.scheduler = scheduler
        self.prediction_type = prediction_type
        self.t0_fraction = float(t0_fraction)
        self.sampler = TimestepSampler(scheduler, timestep_distribution, t_max=t_max, t0_fraction=t0_fraction)
        # the unlabelled part is never put at t = 0: there is nothing to denoise there
        self.unlabeled_sampler = TimestepSampler(scheduler, timestep_distribution, t_max=t_max)
        self.mask_weighting = mask_weighting
        self.unlabeled_loader = unlabeled_loader
        self.unlabeled_weight = float(unlabeled_weight)
        self.pseudo_labeler = pseudo_labeler
        self.image_key = image_key
        self.label_key = label_key
        self._iterator = None

    def get_noise(self, images: torch.Tensor) -> torch.Tensor:
        """``eps ~ N(0, I)`` in noised modes, zeros otherwise (so ``x_t`` is the clean image)."""
        return torch.randn_like(images) if self.mode.noised else torch.zeros_like(images)

    def get_timesteps(self, images: torch.Tensor) -> torch.Tensor:
        """Timesteps from the sampler in noised modes, all 0 otherwise."""
        if not self.mode.noised:
            return torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        return self.sampler(images.shape[0], images.device)

    def get_target(self, images: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The image head's target for ``prediction_type``."""
        if self.prediction_type == "sample":
            return images
        if self.prediction_type == "epsilon":
            return noise
        return self.scheduler.get_velocity(images, noise, timesteps)

    def _next_unlabeled(self) -> Mapping[str, torch.Tensor]:
        for _ in range(2):
            if self._iterator is None:
                self._iterator = iter(self.unlabeled_loader)
            try:
                return next(self._iterator)
            except StopIteration:
                self._iterator = None
        raise ValueError(f"{type(self).__name__}: 'unlabeled_loader' yields no batch; is the unlabeled list empty?")

    def __call__(
        self,
        batchdata: Mapping[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple, dict[str, torch.Tensor]]:
        """Returns ``(images, targets, (), {"noise": noise, "timesteps": t})``, labelled samples first.

        ``images`` (N, C, *spatial) with N = N_l (+ N_u unlabelled); ``targets["label"]`` (N_l, 1, *spatial);
        ``targets["image"]`` (N_l + N_u or N_u, C, *spatial), the last samples of the batch; ``targets["mask_weights"]``
        (N_l,) with ``mask_weighting="alpha_bar"``; ``targets["image_weights"]`` (N_l + N_u,) when both parts are
        denoised; with a ``pseudo_labeler``, ``targets["pseudo_label"]`` and ``targets["pseudo_weights"]``
        (N_u, 1, *spatial) instead of an image target.

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
        if self.mode.uses_labels and self.mask_weighting != "none":
            targets["mask_weights"] = mask_weights(self.scheduler, timesteps, self.mask_weighting)
        if self.mode.image_loss:
            targets["image"] = self.get_target(images, noise, timesteps)
        if self.unlabeled_loader is None:
            return images, targets, (), {"noise": noise, "timesteps": timesteps}

        unlabeled = self._next_unlabeled()[self.image_key].to(device=device, non_blocking=non_blocking, **kwargs)
        if self.pseudo_labeler is not None:  # clean, as the labelled part: the teacher's labels are the target
            targets["pseudo_label"], targets["pseudo_weights"] = self.pseudo_labeler(unlabeled)
            zeros = torch.zeros(unlabeled.shape[0], dtype=torch.long, device=unlabeled.device)
            return (
                torch.cat([images, unlabeled]),
                targets,
                (),
                {"noise": torch.cat([noise, torch.zeros_like(unlabeled)]), "timesteps": torch.cat([timesteps, zeros])},
            )
        noise_u = torch.randn_like(unlabeled)
        t_u = self.unlabeled_sampler(unlabeled.shape[0], unlabeled.device)
        target_u = self.get_target(unlabeled, noise_u, t_u)
        if "image" in targets:  # both parts are denoised: weigh them
            n_l, n_u = images.shape[0], unlabeled.shape[0]
            targets["image"] = torch.cat([targets["image"], target_u])
            targets["image_weights"] = torch.cat(
                [torch.ones(n_l, device=images.device), torch.full((n_u,), self.unlabeled_weight, device=images.device)]
            )
        else:
            targets["image"] = target_u
        return (
            torch.cat([images, unlabeled]),
            targets,
            (),
            {"noise": torch.cat([noise, noise_u]), "timesteps": torch.cat([timesteps, t_u])},
        )


def self_mode_contrastive(mode: str) -> bool:
    """Whether ``mode`` is the contrastive one (its batches must all be labelled)."""
    return get_mode(mode).contrastive


def finetuning_prepare_batch(
    scheduler: Scheduler,
    prediction_type: str = "sample",
    unlabeled_loader: Any = None,
    pseudo_labeler: Any = None,
    **sampling: Any,
) -> HybridPrepareBatch:
    """The prepare-batch of fine-tuning: labelled batches at ``t = 0`` (mask loss), plus batches of unlabelled scans
    from ``unlabeled_loader`` when there is one: noised for the denoising loss (semi-supervised hybrid fine-tuning),
    or clean with a ``pseudo_labeler``'s labels.

    Args:
        scheduler: the noise scheduler.
        prediction_type: the image head's target (used with unlabelled scans).
        unlabeled_loader: batches of unlabelled images, or ``None`` (a disabled loader in the config).
        pseudo_labeler: a ``PseudoLabeler`` (configs/pseudo_labels.yaml), or ``None``.
        sampling: ``timestep_distribution`` and ``t_max`` of the unlabelled scans' noise levels.
    """
    return HybridPrepareBatch(
        scheduler,
        mode="supervised",
        prediction_type=prediction_type,
        unlabeled_loader=unlabeled_loader,
        pseudo_labeler=pseudo_labeler,
        **sampling,
    )
