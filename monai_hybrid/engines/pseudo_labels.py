"""Pseudo-labels of the target's unlabelled scans from a mean teacher, for fine-tuning.

Self-training with a mean teacher (Tarvainen and Valpola, NeurIPS 2017; FixMatch's confidence mask, Sohn et al.,
NeurIPS 2020): the teacher is an exponential moving average of the network being fine-tuned (PyTorch's
``AveragedModel`` with ``get_ema_multi_avg_fn``), its labels of each unlabelled batch train the student with a
cross-entropy on the voxels it is sure of, and the weight of that term ramps up from 0 while the teacher learns the
target site from the labelled scans.

The hybrid model's own uncertainty can choose the voxels: with ``timesteps`` above 0 the teacher segments each
unlabelled image clean and noised at small noise levels, and a voxel is kept only where every pass gives the
averaged prediction's class and that class's averaged probability reaches ``threshold``. With ``timesteps=(0,)`` the
mask is the confidence threshold alone (the usual recipe, for a model of any pretraining).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from monai_hybrid.engines.noise_levels import ensemble_levels

__all__ = ["PseudoLabeler"]

logger = logging.getLogger(__name__)


class PseudoLabeler:
    """A mean teacher that labels unlabelled images, as an Ignite handler of the fine-tuning trainer.

    Attached to the trainer (after the handler that loads the pretrained weights), it copies the network into the
    teacher when the run starts and moves the teacher towards the network after every iteration
    (``teacher = decay * teacher + (1 - decay) * network``). ``HybridPrepareBatch`` calls it on each unlabelled
    batch.

    Args:
        network: the network being fine-tuned (a ``HybridDiffusionUNet``, possibly wrapped by
            ``DistributedDataParallel``).
        timesteps: the noise levels the teacher segments each image at (distinct, each in
            ``[0, num_train_timesteps)``); ``(0,)``: one clean pass.
        draws: noise draws at each level above 0.
        scheduler: the training noise scheduler (``add_noise``); needed with a level above 0.
        threshold: the averaged probability a voxel's class must reach to be kept, in ``[0, 1)``.
        decay: the teacher's moving-average decay per iteration, in ``[0, 1)``.
        rampup: iterations over which the weight of the pseudo-labels grows linearly from 0 to 1 (0: full weight
            from the first iteration).
    """

    def __init__(
        self,
        network: nn.Module,
        timesteps: Sequence[int] = (0,),
        draws: int = 1,
        scheduler: Any = None,
        threshold: float = 0.9,
        decay: float = 0.99,
        rampup: int = 0,
    ) -> None:
        name = type(self).__name__
        if not isinstance(network, nn.Module):
            raise ValueError(f"{name}: 'network' must be a torch module, got {type(network).__name__}.")
        if isinstance(timesteps, (str, int)) or not timesteps:
            raise ValueError(f"{name}: 'timesteps' must be a non-empty list of noise levels, got {timesteps!r}.")
        levels = ensemble_levels(timesteps, draws, scheduler, name)
        if not 0.0 <= float(threshold) < 1.0:
            raise ValueError(f"{name}: 'threshold' must be in [0, 1), got {threshold!r}.")
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"{name}: 'decay' must be in [0, 1), got {decay!r}.")
        if not isinstance(rampup, int) or isinstance(rampup, bool) or rampup < 0:
            raise ValueError(f"{name}: 'rampup' must be a non-negative integer, got {rampup!r}.")
        self.network = getattr(network, "module", network)  # the weights, not a DDP wrapper
        self.timesteps = levels
        self.draws = draws
        self.scheduler = scheduler
        self.threshold = float(threshold)
        self.decay = float(decay)
        self.rampup = rampup
        self.teacher: AveragedModel | None = None
        self.iteration = 0

    def attach(self, engine: Engine) -> None:
        """Start the teacher when ``engine`` starts (from the weights loaded by then) and update it after each
        iteration."""
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)

    def _start(self, engine: Engine) -> None:
        self.teacher = AveragedModel(self.network, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        self.teacher.update_parameters(self.network)  # the first update copies the network
        self.teacher.eval()
        self.iteration = engine.state.iteration
        logger.info(
            "Pseudo-labels of the unlabelled scans: mean teacher (decay %s), noise levels %s, threshold %s, weight "
            "ramped up over %d iterations.",
            self.decay,
            list(self.timesteps),
            self.threshold,
            self.rampup,
        )

    def _update(self, engine: Engine) -> None:
        if self.teacher is not None:
            self.teacher.update_parameters(self.network)
        self.iteration = engine.state.iteration

    @property
    def ramp(self) -> float:
        """The weight of the pseudo-labels at the current iteration, in ``[0, 1]``."""
        return 1.0 if self.rampup == 0 else min(1.0, self.iteration / self.rampup)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's classes and which voxels to keep.

        Args:
            images: (N, C, *spatial) clean unlabelled images.

        Returns:
            ``labels`` (N, 1, *spatial) long, the class of the averaged probabilities, and ``keep`` (N, 1, *spatial)
            bool: the voxels whose every pass agrees with ``labels`` and whose averaged probability of it reaches
            ``threshold``.

        Raises:
            RuntimeError: the teacher has not started (the handler is not attached to a running trainer).
        """
        if self.teacher is None:
            raise RuntimeError(
                f"{type(self).__name__}: the teacher starts with the trainer; attach the labeller to the trainer "
                "(train#handlers) before asking it for labels."
            )
        teacher = self.teacher.module
        probs = []
        for t in self.timesteps:
            for _ in range(1 if t == 0 else self.draws):
                if t == 0:
                    logits = teacher(images, output="mask")
                else:
                    steps = torch.full((images.shape[0],), t, dtype=torch.long, device=images.device)
                    noised = self.scheduler.add_noise(images, torch.randn_like(images), steps)
                    logits = teacher(noised, timesteps=steps, output="mask")
                probs.append(torch.softmax(logits.float(), dim=1))
        mean = torch.stack(probs).mean(dim=0)
        confidence, labels = mean.max(dim=1, keepdim=True)
        keep = confidence >= self.threshold
        for p in probs:
            keep &= p.argmax(dim=1, keepdim=True) == labels
        return labels, keep

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``labels`` (N, 1, *spatial) and the per-voxel weights (N, 1, *spatial) of the pseudo-label loss: the
        ramp's weight where ``predict`` keeps the voxel, 0 elsewhere."""
        labels, keep = self.predict(images)
        return labels, keep.float() * self.ramp
