"""The clean-image estimate from any diffusion prediction type, and the validation denoising error."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.networks import eval_mode
from monai.networks.schedulers import Scheduler
from monai.utils import CommonKeys as Keys

from monai_hybrid.options import PredictionType, check_spatial_dims, choose

__all__ = ["predict_x0", "DenoisingErrorHandler"]


def predict_x0(
    scheduler: Scheduler, prediction_type: str, x_t: torch.Tensor, t: torch.Tensor, model_output: torch.Tensor
) -> torch.Tensor:
    """The estimate of the clean image ``x_0`` implied by the network's image prediction.

    With ``x_t = sqrt(a) x_0 + sqrt(1 - a) eps`` and ``a = alpha_bar_t``:

    * ``sample``: the prediction is ``x_0``;
    * ``epsilon``: ``x_0 = (x_t - sqrt(1 - a) eps_hat) / sqrt(a)``;
    * ``v_prediction`` (``v = sqrt(a) eps - sqrt(1 - a) x_0``): ``x_0 = sqrt(a) x_t - sqrt(1 - a) v_hat``.

    Args:
        scheduler: the noise scheduler (its ``alphas_cumprod``).
        prediction_type: ``sample``, ``epsilon`` or ``v_prediction``.
        x_t: noisy image (N, C, *spatial).
        t: timesteps (N,).
        model_output: the image head's output (N, C, *spatial).

    Returns:
        (N, C, *spatial) clean-image estimate.
    """
    prediction_type = choose(prediction_type, PredictionType, "predict_x0", "prediction_type")
    if prediction_type == "sample":
        return model_output
    a = scheduler.alphas_cumprod.to(device=x_t.device, dtype=x_t.dtype)[t.long()]
    a = a.reshape(-1, *([1] * (x_t.ndim - 1)))
    if prediction_type == "epsilon":
        return (x_t - (1 - a).sqrt() * model_output) / a.sqrt()
    return a.sqrt() * x_t - (1 - a).sqrt() * model_output


class DenoisingErrorHandler:
    """Validation metric: the MSE between the clean image and its estimate from noisy copies at fixed timesteps.

    Attached to a ``SupervisedEvaluator``, after each validation forward it noises the batch's images at each of
    ``timesteps`` with noise from a fixed seed (the same every validation, so epochs compare), runs the network's
    image head and averages ``MSE(x0_hat, x)``. For a 2D network on volumes it uses ``num_slices`` axial slices
    spread over the middle of each volume; for a 3D network a centred crop of ``roi_size``. The mean over the
    validation set is stored in ``engine.state.metrics[metric_name]``.

    Args:
        scheduler: the noise scheduler used in training.
        prediction_type: the image head's target type.
        timesteps: timesteps to measure at.
        spatial_dims: 2 (slices of the validation volumes) or 3 (crops).
        num_slices: slices per volume (2D).
        roi_size: crop size (3D); ``None`` keeps the whole volume.
        seed: seed of the noise.
        metric_name: key in ``engine.state.metrics``.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        prediction_type: str = "sample",
        timesteps: Sequence[int] = (100, 300, 600),
        spatial_dims: int = 2,
        num_slices: int = 8,
        roi_size: Sequence[int] | None = None,
        seed: int = 0,
        metric_name: str = "val_denoise_mse",
    ) -> None:
        name = type(self).__name__
        prediction_type = choose(prediction_type, PredictionType, name, "prediction_type")
        steps = [int(t) for t in timesteps]
        if not steps or any(not 0 <= t < scheduler.num_train_timesteps for t in steps):
            raise ValueError(f"{name}: 'timesteps' must be in [0, {scheduler.num_train_timesteps}), got {timesteps}.")
        spatial_dims = check_spatial_dims(spatial_dims, name)
        if num_slices < 1:
            raise ValueError(f"{name}: 'num_slices' must be >= 1, got {num_slices!r}.")
        self.scheduler = scheduler
        self.prediction_type = prediction_type
        self.timesteps = steps
        self.spatial_dims = spatial_dims
        self.num_slices = num_slices
        self.roi_size = tuple(roi_size) if roi_size is not None else None
        self.seed = seed
        self.metric_name = metric_name
        self._sum = 0.0
        self._count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._completed)

    def _reset(self, engine: Engine) -> None:
        self._sum, self._count = 0.0, 0

    def _samples(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == self.spatial_dims + 2:  # already 2D slices or 3D patches
            x = images
        else:  # a 2D network validated on volumes: (N, C, H, W, D) -> (N * S, C, H, W)
            depth = images.shape[-1]
            idx = torch.linspace(0.3 * (depth - 1), 0.7 * (depth - 1), self.num_slices).round().long().unique()
            x = images[..., idx.to(images.device)].movedim(-1, 1).reshape(-1, *images.shape[1:-1])
        if self.roi_size is not None and self.spatial_dims == 3:
            starts = [max(0, (s - r) // 2) for s, r in zip(x.shape[2:], self.roi_size, strict=False)]
            window = tuple(slice(b, b + r) for b, r in zip(starts, self.roi_size, strict=False))
            x = x[(slice(None), slice(None)) + window]
        return torch.as_tensor(x)

    def _iteration(self, engine: Engine) -> None:
        x = self._samples(engine.state.output[Keys.IMAGE]).float()
        generator = torch.Generator().manual_seed(self.seed + 7919 * self._count)
        network = engine.network
        with eval_mode(network):
            for t in self.timesteps:
                noise = torch.randn(x.shape, generator=generator).to(x.device)
                steps = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
                x_t = self.scheduler.add_noise(x, noise, steps)
                out = network(x_t, timesteps=steps, output="image")
                x0 = predict_x0(self.scheduler, self.prediction_type, x_t, steps, out.float())
                self._sum += float(F.mse_loss(x0, x))
                self._count += 1

    def _completed(self, engine: Engine) -> None:
        total = torch.tensor([self._sum, float(self._count)], dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            backend_device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
            total = total.to(backend_device)
            torch.distributed.all_reduce(total)  # every rank saw a share of the validation set
        if total[1] > 0:
            engine.state.metrics[self.metric_name] = float(total[0] / total[1])
