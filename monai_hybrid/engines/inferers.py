"""Inferers for a hybrid network: segment a clean image at t = 0 with the mask head only."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer, SliceInferer, SlidingWindowInferer

from monai_hybrid.engines.noise_levels import ensemble_levels
from monai_hybrid.options import check_spatial_dims

__all__ = ["MaskInferer", "window_inferer"]


class MaskInferer(Inferer):
    """Run any MONAI inferer on the network's mask output: one forward pass per window or slice at t = 0, or the
    hybrid model's own ensemble over small noise levels.

    It asks the network for ``output="mask"``, so a network trained in ``output_mode="all"`` segments exactly as an
    inference bundle with ``output_mode="mask"`` does. With the default ``timesteps=(0,)`` that is one pass on the
    clean image (no timesteps: t = 0). With more levels the mask logits (not probabilities) are averaged over the
    passes, each with equal weight: one clean pass for ``t = 0`` and, for each ``t > 0``, ``draws`` passes on the
    window noised as in training, ``x_t = sqrt(alpha_bar_t) x + sqrt(1 - alpha_bar_t) eps``
    (``scheduler.add_noise``), each told its ``t``. The noise is drawn inside each window (padding included, as
    training noises the padded crop) from a generator seeded with ``seed`` at every call, so the same scan gives the
    same labels.

    Why logits: the result stays what one pass returns, logits of shape (N, K, *spatial), so every consumer's
    postprocessing (the bundle's softmax and argmax, MONAI Label's) is unchanged, and the default stays bit-identical
    to one pass. Their softmax is the normalised geometric mean of the passes' probabilities, a product of experts:
    a class keeps a voxel only where every pass gives it some probability, so one pass's confident outlier is
    outvoted (the arithmetic mean of probabilities, the usual ensemble, would give it at least 1 / passes; the two
    are not compared on validation subjects here).

    Args:
        inferer: the MONAI inferer that tiles the input: ``SimpleInferer`` (default), ``SlidingWindowInferer`` for
            3D patches, ``SliceInferer`` for a 2D network on volumes.
        timesteps: the noise levels of the ensemble (each in ``[0, num_train_timesteps)``); ``(0,)``: one clean pass.
        draws: noise draws at each level above 0.
        scheduler: the training noise scheduler (``add_noise``); needed when a level is above 0.
        seed: seed of the noise draws.
    """

    def __init__(
        self,
        inferer: Inferer | None = None,
        timesteps: Sequence[int] = (0,),
        draws: int = 1,
        scheduler: Any = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if inferer is not None and not callable(inferer):
            raise ValueError(f"{name}: 'inferer' must be a MONAI inferer, got {type(inferer).__name__}.")
        levels = ensemble_levels(timesteps, draws, scheduler, name)
        self.inferer = inferer or SimpleInferer()
        self.timesteps = levels
        self.draws = draws
        self.scheduler = scheduler
        self.seed = int(seed)

    @property
    def passes(self) -> int:
        """Forward passes per window: one per clean level, ``draws`` per noisy level."""
        return sum(1 if t == 0 else self.draws for t in self.timesteps)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Mask logits (N, K, *spatial) of ``inputs`` (N, C, *spatial), averaged over the ensemble's passes."""
        if self.timesteps == (0,):
            return self.inferer(inputs, functools.partial(network, output="mask"), *args, **kwargs)
        generator = torch.Generator().manual_seed(self.seed)

        def noised(window: torch.Tensor, t: int) -> torch.Tensor:
            noise = torch.randn(window.shape, generator=generator, dtype=torch.float32).to(window)
            steps = torch.full((window.shape[0],), t, dtype=torch.long, device=window.device)
            return network(self.scheduler.add_noise(window, noise, steps), timesteps=steps, output="mask")

        total = None
        for t in self.timesteps:
            for _ in range(1 if t == 0 else self.draws):
                run = functools.partial(network, output="mask") if t == 0 else functools.partial(noised, t=t)
                logits = self.inferer(inputs, run, *args, **kwargs)
                total = logits if total is None else total + logits
        return total / self.passes


def window_inferer(
    spatial_dims: int,
    roi_size: Sequence[int],
    background: float = 0.0,
    sw_batch_size: int | None = None,
    overlap: float = 0.25,
    ensemble_timesteps: Sequence[int] = (0,),
    ensemble_draws: int = 1,
    noise_schedule: dict | None = None,
) -> MaskInferer:
    """The mask inferer over whole scans of a 2D or 3D hybrid network.

    * 2D: MONAI's ``SliceInferer`` over the axial slices (last spatial axis), ``roi_size`` windows in-plane;
    * 3D: MONAI's ``SlidingWindowInferer`` with ``roi_size`` patches.

    Args:
        spatial_dims: the network's, 2 or 3.
        roi_size: the window, one size per spatial dimension of the network.
        background: value of padded voxels: the scaled background (``b_min`` of the intensity scaling), as training
            pads the raw image before scaling. Padding with 0 (mid-grey) shifts the network's GroupNorm statistics.
        sw_batch_size: windows per forward pass (default: 32 slices in 2D, 2 patches in 3D).
        overlap: overlap of neighbouring windows.
        ensemble_timesteps, ensemble_draws: the hybrid model's own ensemble (``MaskInferer``'s ``timesteps`` and
            ``draws``); ``(0,)``: one clean pass.
        noise_schedule: the model's training noise schedule (``num_train_timesteps``, ``schedule``: the
            ``noise_schedule`` of its model settings), for an ensemble with levels above 0.

    Raises:
        ValueError: ``spatial_dims`` is not 2 or 3, or ``roi_size`` does not have ``spatial_dims`` sizes.
    """
    spatial_dims = check_spatial_dims(spatial_dims, "window_inferer")
    roi_size = [int(r) for r in roi_size]
    if len(roi_size) != spatial_dims:
        raise ValueError(
            f"window_inferer: 'roi_size' must hold {spatial_dims} sizes for a {spatial_dims}D network, got {roi_size}."
        )
    if spatial_dims == 2:
        tiles: Inferer = SliceInferer(
            spatial_dim=2,
            roi_size=roi_size,
            sw_batch_size=sw_batch_size or 32,
            overlap=overlap,
            cval=background,
            progress=False,
        )
    else:
        tiles = SlidingWindowInferer(
            roi_size=roi_size, sw_batch_size=sw_batch_size or 2, overlap=overlap, cval=background
        )
    if isinstance(ensemble_timesteps, (int, float, str)) or not ensemble_timesteps:
        raise ValueError(
            f"window_inferer: 'ensemble_timesteps' must be a non-empty list of noise levels, e.g. [0, 50, 100], got "
            f"{ensemble_timesteps!r}."
        )
    try:
        noisy = max(int(t) for t in ensemble_timesteps) > 0
    except (TypeError, ValueError):
        noisy = False  # MaskInferer names the entry that is not a noise level
    scheduler = None
    if noisy:
        from monai.networks.schedulers import DDPMScheduler

        if not noise_schedule:
            raise ValueError(
                "window_inferer: an ensemble over noise levels above 0 needs the model's 'noise_schedule'."
            )
        scheduler = DDPMScheduler(**noise_schedule)
    return MaskInferer(tiles, timesteps=ensemble_timesteps, draws=ensemble_draws, scheduler=scheduler)
