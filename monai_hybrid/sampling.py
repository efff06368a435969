"""Joint generation of image-mask pairs from a hybrid model (docs/method.md, "Sampling pairs").

The hybrid network is a generative model of ``p(image, mask)``: run the reverse diffusion process (MONAI's DDIM or
DDPM scheduler, through MONAI's ``DiffusionInferer.sample``) on the image channels using the image head, then read
the mask from the mask head on the final image at ``t = 0``. Pairs are written as NIfTI with a datalist, so that
fine-tuning can read them like real data.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.inferers import DiffusionInferer
from monai.networks.schedulers import Scheduler

__all__ = ["sample_pairs", "write_pairs", "generate_pairs"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def sample_pairs(
    network: torch.nn.Module,
    scheduler: Scheduler,
    num_inference_steps: int,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample a batch of image-mask pairs.

    Args:
        network: a ``HybridDiffusionUNet`` trained with the scheduler's ``prediction_type``.
        scheduler: MONAI ``DDIMScheduler`` or ``DDPMScheduler``.
        num_inference_steps: reverse steps.
        shape: (N, C, *spatial) of the images.
        generator: random generator of the initial noise (and of DDPM's noise).
        device: device to sample on.
        progress: show a progress bar over steps.

    Returns:
        ``(images, labels)``: images (N, C, *spatial) in the training intensity range, labels (N, 1, *spatial) int64.
    """
    if num_inference_steps < 1:
        raise ValueError(f"sample_pairs: 'num_inference_steps' must be >= 1, got {num_inference_steps}.")
    network.eval()
    noise = torch.randn(tuple(shape), generator=generator).to(device)
    scheduler.set_timesteps(num_inference_steps=num_inference_steps, device=torch.device(device))
    inferer = DiffusionInferer(scheduler)
    image_model = functools.partial(network, output="image")
    images = inferer.sample(input_noise=noise, diffusion_model=image_model, scheduler=scheduler, verbose=progress)
    images = images.clamp(-1.0, 1.0)
    labels = network(images, output="mask").argmax(dim=1, keepdim=True)
    return images, labels


def write_pairs(
    images: torch.Tensor,
    labels: torch.Tensor,
    out_dir: str | os.PathLike,
    pixdim: Sequence[float],
    start: int = 0,
    prefix: str = "sample",
) -> list[dict]:
    """Write pairs as NIfTI (2D pairs as volumes of one slice) with a diagonal affine of ``pixdim``.

    Returns:
        Datalist entries with paths relative to ``out_dir``.
    """
    import nibabel as nib

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    affine = np.diag([*[float(p) for p in pixdim][:3], 1.0])
    entries = []
    for i in range(images.shape[0]):
        img = images[i, 0].cpu().numpy().astype(np.float32)
        lab = labels[i, 0].cpu().numpy().astype(np.uint8)
        if img.ndim == 2:
            img, lab = img[..., None], lab[..., None]
        name = f"{prefix}_{start + i:04d}"
        entry = {"image": f"images/{name}.nii.gz", "label": f"labels/{name}_dseg.nii.gz"}
        nib.save(nib.Nifti1Image(img, affine), str(out / entry["image"]))
        nib.save(nib.Nifti1Image(lab, affine), str(out / entry["label"]))
        entries.append(entry)
    return entries


def generate_pairs(
    network: torch.nn.Module,
    scheduler: Scheduler,
    out_dir: str | os.PathLike,
    num_samples: int,
    batch_size: int,
    spatial_shape: Sequence[int],
    pixdim: Sequence[float],
    num_inference_steps: int = 50,
    seed: int = 0,
    in_channels: int = 1,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> Path:
    """Sample ``num_samples`` pairs in batches and write them with ``datalist.json`` (all under ``training``).

    Returns:
        The path of the datalist.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError("generate_pairs: 'num_samples' and 'batch_size' must be >= 1.")
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(int(seed))
    entries: list[dict] = []
    bar = tqdm(total=num_samples, desc="sampling", unit="pair", disable=not progress)
    with torch.random.fork_rng(devices=[]):  # DDPM steps draw from the global generator: seed it, then restore it
        torch.manual_seed(int(seed))
        while len(entries) < num_samples:
            n = min(batch_size, num_samples - len(entries))
            images, labels = sample_pairs(
                network,
                scheduler,
                num_inference_steps,
                (n, in_channels, *spatial_shape),
                generator=generator,
                device=device,
            )
            entries += write_pairs(images, labels, out_dir, pixdim, start=len(entries))
            bar.update(n)
    bar.close()
    datalist = Path(out_dir) / "datalist.json"
    datalist.write_text(
        json.dumps(
            {
                "description": f"{num_samples} image-mask pairs sampled from a hybrid model ({num_inference_steps} "
                f"{type(scheduler).__name__} steps, seed {seed})",
                "training": entries,
                "validation": [],
                "test": [],
                "unlabeled": [],
            },
            indent=2,
        )
    )
    logger.info("Wrote %d sampled pairs and %s", len(entries), datalist)
    return datalist
