"""Which noise levels hybrid pretraining trains on, and how much the mask loss counts at each (docs/method.md).

With a variance-preserving schedule, ``x_t = sqrt(alpha_bar_t) x + sqrt(1 - alpha_bar_t) eps``: the signal-to-noise
ratio is ``SNR_t = alpha_bar_t / (1 - alpha_bar_t)`` and the EDM noise level (Karras et al. 2022) of the same input,
rescaled to unit signal, is ``sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) = SNR_t ** -0.5``.

Timestep distributions:

* ``uniform``: ``t ~ U{0, ..., T - 1}`` (DDPM). With 1000 linear-beta steps about half the samples have SNR < 0.1,
  where the mask is not recoverable from the input;
* ``truncated``: ``t ~ U{0, ..., t_max - 1}``, the low-to-moderate noise where denoising features transfer best
  (DDPM-Seg, Baranchuk et al. 2022: t in 50-250 of 1000);
* ``lognormal``: EDM's ``ln sigma ~ N(P_mean, P_std^2)`` (Karras et al. 2022, ``training/loss.py``: -1.2, 1.2),
  each sigma mapped to the timestep whose ``sigma_t`` is nearest.

A share ``t0_fraction`` of every batch is put at ``t = 0``, the timestep of fine-tuning and inference.

Mask-loss weighting per sample: ``none`` (1), or ``alpha_bar`` (``alpha_bar_t = SNR_t / (1 + SNR_t)``: the share of
signal in the input, 1 at ``t = 0``, near 0 where the mask cannot be seen).
"""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.schedulers import Scheduler

from monai_hybrid.options import MaskWeighting, TimestepDistribution, choose

__all__ = ["TimestepSampler", "ensemble_levels", "mask_weights"]


def _alpha_bar(scheduler: Scheduler) -> torch.Tensor:
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None:
        raise ValueError(
            f"'scheduler' ({type(scheduler).__name__}) has no 'alphas_cumprod'; use a MONAI DDPMScheduler."
        )
    return torch.as_tensor(alphas, dtype=torch.float64)


class TimestepSampler:
    """Draws the training timesteps of a batch.

    Args:
        scheduler: the MONAI noise scheduler (``num_train_timesteps`` = T, ``alphas_cumprod``).
        distribution: ``uniform``, ``truncated`` or ``lognormal`` (module docstring).
        t_max: upper bound (exclusive) of ``truncated``, in ``[1, T]``.
        log_sigma_mean, log_sigma_std: ``P_mean`` and ``P_std`` of ``lognormal``.
        t0_fraction: share of the batch put at ``t = 0``, in ``[0, 1]``.

    Example::

        sampler = TimestepSampler(DDPMScheduler(1000), "truncated", t_max=250)
        t = sampler(8, torch.device("cpu"))   # (8,) long, every value in [0, 250)
    """

    def __init__(
        self,
        scheduler: Scheduler,
        distribution: str = "uniform",
        t_max: int | None = None,
        log_sigma_mean: float = -1.2,
        log_sigma_std: float = 1.2,
        t0_fraction: float = 0.0,
    ) -> None:
        name = type(self).__name__
        distribution = choose(distribution, TimestepDistribution, name, "distribution")
        self.num_train_timesteps = int(scheduler.num_train_timesteps)
        t_max = self.num_train_timesteps if t_max is None else int(t_max)
        if not 1 <= t_max <= self.num_train_timesteps:
            raise ValueError(f"{name}: 't_max' must be in [1, {self.num_train_timesteps}], got {t_max!r}.")
        if not float(log_sigma_std) > 0:
            raise ValueError(f"{name}: 'log_sigma_std' must be > 0, got {log_sigma_std!r}.")
        if not 0.0 <= float(t0_fraction) <= 1.0:
            raise ValueError(f"{name}: 't0_fraction' must be in [0, 1], got {t0_fraction!r}.")
        self.distribution = distribution
        self.t_max = t_max
        self.log_sigma_mean = float(log_sigma_mean)
        self.log_sigma_std = float(log_sigma_std)
        self.t0_fraction = float(t0_fraction)
        alpha_bar = _alpha_bar(scheduler)
        self.sigmas = torch.sqrt((1.0 - alpha_bar) / alpha_bar)  # increasing in t

    def __call__(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(n,) long timesteps in ``[0, T)``."""
        if self.distribution == "lognormal":
            log_sigma = self.log_sigma_mean + self.log_sigma_std * torch.randn(n, dtype=torch.float64)
            t = self.nearest_timestep(torch.exp(log_sigma))
        else:
            high = self.t_max if self.distribution == "truncated" else self.num_train_timesteps
            t = torch.randint(0, high, (n,))
        if self.t0_fraction > 0:
            t = torch.where(torch.rand(n) < self.t0_fraction, torch.zeros_like(t), t)
        return t.long().to(device)

    def nearest_timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The timestep whose ``sigma_t`` is nearest to each ``sigma`` (in log space)."""
        distance = (torch.log(self.sigmas)[None, :] - torch.log(sigma.double())[:, None]).abs()
        return distance.argmin(dim=1)


def mask_weights(scheduler: Scheduler, timesteps: torch.Tensor, weighting: str = "none") -> torch.Tensor:
    """Per-sample weights of the mask loss at ``timesteps``: 1 (``none``) or ``alpha_bar_t`` (``alpha_bar``).

    Args:
        scheduler: the noise scheduler (``alphas_cumprod``).
        timesteps: (N,) long.
        weighting: a ``MaskWeighting`` (or its value).

    Returns:
        (N,) float32 on the device of ``timesteps``.
    """
    weighting = choose(weighting, MaskWeighting, "mask_weights", "weighting")
    if weighting == MaskWeighting.NONE:
        return torch.ones(timesteps.shape[0], device=timesteps.device)
    return _alpha_bar(scheduler)[timesteps.cpu()].float().to(timesteps.device)


def ensemble_levels(timesteps: Any, draws: Any, scheduler: Any, owner: str) -> tuple[int, ...]:
    """The noise levels of a model's own ensemble (``MaskInferer``, ``PseudoLabeler``), checked.

    Args:
        timesteps: the levels, a list of integers (integral floats from a config are taken as integers).
        draws: noise draws per level above 0, a positive integer.
        scheduler: the training noise scheduler (``add_noise``, ``num_train_timesteps``); needed with a level above 0.
        owner: the class named in the errors.

    Returns:
        The levels as a tuple of integers.

    Raises:
        ValueError: ``timesteps`` is not a list of integers, is empty, repeats a level or holds a negative one;
            ``draws`` is not a positive integer; a level above 0 without a ``scheduler``, or at or above its steps.
    """
    try:
        given = list(timesteps)
        levels = [int(t) for t in given if not isinstance(t, (str, bool)) and float(t) == int(t)]
    except (TypeError, ValueError, OverflowError):
        given, levels = None, []
    if isinstance(timesteps, str) or given is None or len(levels) != len(given):
        raise ValueError(f"{owner}: 'timesteps' must be a list of integer noise levels, got {timesteps!r}.")
    if not levels or len(set(levels)) != len(levels) or min(levels) < 0:
        raise ValueError(f"{owner}: 'timesteps' must be distinct non-negative integers, got {list(timesteps)}.")
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise ValueError(f"{owner}: 'draws' must be a positive integer, got {draws!r}.")
    if max(levels) > 0:
        if scheduler is None or not hasattr(scheduler, "add_noise"):
            raise ValueError(f"{owner}: noise levels above 0 ({levels}) need the training 'scheduler'.")
        if max(levels) >= int(scheduler.num_train_timesteps):
            raise ValueError(
                f"{owner}: 'timesteps' must be below the schedule's {scheduler.num_train_timesteps} steps, got "
                f"{levels}."
            )
    return tuple(levels)
