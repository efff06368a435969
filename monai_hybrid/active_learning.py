"""Which scan to annotate next: the hybrid model's own disagreement with itself across small noise levels.

A hybrid network segments from a noisy image at any timestep ``t``. On a scan it has learnt well, its mask at a few
small noise levels (t = 0, 50, 100, 200 of 1000: the signal still dominates) stays the same; where the scan is
unlike what it was trained on, the masks change with the noise. The score of a scan is the mean, over the voxels
that the clean prediction calls foreground, of the variance of the class probabilities across the noise levels,
summed over classes: a handful of forward passes per scan, no labels, no dropout sampling. The scan with the highest
score is the one to annotate next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from monai.inferers import Inferer
from monai.networks.schedulers import DDPMScheduler

__all__ = ["DEFAULT_TIMESTEPS", "BundleScorer", "noise_disagreement", "rank_by_disagreement"]

DEFAULT_TIMESTEPS = (0, 50, 100, 200)


@torch.no_grad()
def noise_disagreement(
    network: torch.nn.Module,
    image: torch.Tensor,
    inferer: Inferer,
    timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
    num_train_timesteps: int = 1000,
    seed: int = 0,
) -> float:
    """The disagreement of the mask head with itself across ``timesteps`` on one scan.

    Args:
        network: a ``HybridDiffusionUNet`` (its ``forward`` takes ``timesteps`` and ``output="mask"``).
        image: the preprocessed scan, (1, C, *spatial), as the inference config prepares it.
        inferer: the tiling inferer of the model's windows (``SliceInferer`` or ``SlidingWindowInferer``; the
            ``inferer`` attribute of ``monai_hybrid.engines.window_inferer``'s result).
        timesteps: the noise levels, ``t = 0`` first (its prediction defines the foreground scored).
        num_train_timesteps: ``T`` of the linear-beta schedule the network was trained with.
        seed: seed of the noise (the same noise for every scan and level).

    Returns:
        The mean over predicted-foreground voxels of the summed per-class variance of the softmax across
        ``timesteps`` (0 when nothing is predicted foreground).

    Raises:
        ValueError: ``image`` is not a batch of one, or ``timesteps`` has fewer than 2 levels or does not start at 0.
    """
    if image.ndim < 4 or image.shape[0] != 1:
        raise ValueError(f"noise_disagreement: 'image' must be (1, C, *spatial), got {tuple(image.shape)}.")
    if len(timesteps) < 2 or timesteps[0] != 0:
        raise ValueError(f"noise_disagreement: 'timesteps' needs 0 first and another level, got {list(timesteps)}.")
    scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, schedule="linear_beta")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(image.shape, generator=generator).to(image)
    probs = []
    for t in timesteps:
        t_tensor = torch.tensor([int(t)], device=image.device)
        x_t = image if t == 0 else scheduler.add_noise(image, noise, t_tensor)
        logits = inferer(x_t, partial(network, timesteps=int(t), output="mask"))
        probs.append(torch.softmax(logits.float(), dim=1))
    stack = torch.stack(probs)  # (L, 1, K, *spatial)
    variance = stack.var(dim=0, unbiased=False).sum(dim=1)  # (1, *spatial)
    foreground = stack[0].argmax(dim=1) > 0
    if not foreground.any():
        return 0.0
    return float(variance[foreground].mean())


def rank_by_disagreement(
    names: Sequence[str], load: Callable[[str], torch.Tensor], score: Callable[[torch.Tensor], float]
) -> list[tuple[str, float]]:
    """``names`` with their scores, highest first.

    Args:
        names: the candidate scans.
        load: a scan's name -> its preprocessed image (1, C, *spatial).
        score: an image -> its disagreement (``noise_disagreement`` with the model bound).
    """
    scored = [(name, score(load(name))) for name in names]
    return sorted(scored, key=lambda item: item[1], reverse=True)


class BundleScorer:
    """Scores scans with a bundle's model: its ``inference.yaml`` preprocessing, network and windows.

    Args:
        bundle_dir: the bundle folder (its ``configs/inference.yaml``).
        model_path: the weights (default: ``<bundle_dir>/models/model.pt``); the settings beside them are used.
        device: where the network runs.
        timesteps: the noise levels of ``noise_disagreement``.

    Example::

        scorer = BundleScorer("my_bundle")
        ranking = rank_by_disagreement(paths, scorer.load, scorer.score)
    """

    def __init__(
        self,
        bundle_dir: str,
        model_path: str | None = None,
        device: str | torch.device = "cpu",
        timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
    ) -> None:
        from pathlib import Path

        from monai.bundle import ConfigParser

        from monai_hybrid.checkpoint_io import load_checkpoint

        bundle = Path(bundle_dir)
        parser = ConfigParser()
        parser.read_config(str(bundle / "configs" / "inference.yaml"))
        parser.update({"bundle_root": str(bundle), "device": torch.device(device)})
        if model_path is not None:
            parser["model_path"] = str(model_path)
        parser.parse()
        parser.get_parsed_content("imports")
        self.network = parser.get_parsed_content("network").eval()
        state = load_checkpoint(parser.get_parsed_content("model_path"), map_location=device)
        self.network.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
        self.preprocessing = parser.get_parsed_content("preprocessing")
        # the tiling inferer inside the mask inferer, in float32: the score is a small variance across noise levels
        self.inferer = parser.get_parsed_content("mask_inferer").inferer
        self.device = torch.device(device)
        self.timesteps = tuple(timesteps)

    def load(self, path: str) -> torch.Tensor:
        """The scan at ``path``, preprocessed: (1, C, *spatial) on the device."""
        return self.preprocessing({"image": path})["image"][None].to(self.device)

    def score(self, image: torch.Tensor) -> float:
        """``noise_disagreement`` of the bundle's model on ``image``."""
        return noise_disagreement(self.network, image, self.inferer, self.timesteps)
