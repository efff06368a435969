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

__all__ = ["check_samplable", "generate_pairs", "sample_pairs", "write_pairs"]

logger = logging.getLogger(__name__)


def check_samplable(checkpoint: str | os.PathLike, num_train_timesteps: int) -> int | None:
    """Refuse, before any compute, a model whose image head never learned to denoise the whole noise range.

    Sampling starts from pure noise at ``t = num_train_timesteps - 1``; a model pretrained on ``t < t_max`` only
    (the bundle's default hybrid pretraining, ``method#t_max`` 250) has never seen such inputs and returns
    texture, not anatomy, and a supervised or contrastive model has no trained image head at all. Training records the
    exclusive upper bound of the timesteps its image head denoised as ``denoised_timesteps`` in
    ``model_settings.json`` beside the checkpoint (0: never; ``None``: not recorded, as for fine-tuned models and
    models before bundle 0.8, which are sampled with a warning).

    Args:
        checkpoint: the model to sample (``sample_checkpoint``).
        num_train_timesteps: ``T`` of the noise schedule sampled with.

    Returns:
        The recorded ``denoised_timesteps`` (``None``: not recorded).

    Raises:
        ValueError: the model denoised fewer than ``num_train_timesteps`` timesteps; the message names the file,
            the key and the pretraining settings that make a model that can sample.
    """
    from monai_hybrid.model_settings import SETTINGS_FILE, read_model_settings

    settings_path = Path(checkpoint).parent / SETTINGS_FILE
    if not settings_path.is_file():
        logger.warning("%s not found: cannot tell which noise levels the model learned to denoise.", settings_path)
        return None
    denoised = read_model_settings(checkpoint).get("denoised_timesteps")
    if denoised is None:
        logger.warning(
            "%s does not record 'denoised_timesteps' (a fine-tuned model, or one trained before bundle 0.8): sampling "
            "it anyway; a model pretrained on low noise levels only gives texture, not anatomy.",
            settings_path,
        )
        return None
    if denoised < num_train_timesteps:
        learned = "was never trained to denoise" if denoised == 0 else f"learned to denoise t < {denoised} only"
        raise ValueError(
            f"{settings_path}: 'denoised_timesteps' is {denoised}: the image head of {checkpoint} {learned}, and "
            f"sampling starts from pure noise at t = {num_train_timesteps - 1}. Sample a hybrid (or diffusion) model "
            "pretrained over the whole noise range: pretrain with --method#timestep_distribution uniform (or "
            "lognormal, or --method#t_max null), then --sample_checkpoint its models/pretrain/model_final.pt."
        )
    return int(denoised)


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
