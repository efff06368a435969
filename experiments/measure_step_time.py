"""Time a hybrid training step against a supervised training step, and one-pass segmentation against sampling.

Training: both run through MONAI's SupervisedTrainer with the same HybridDiffusionUNet, optimiser, batch and
inferer; only the pretraining mode differs (hybrid: noising, image + mask loss; supervised: clean input, mask loss).

Inference: the fine-tuned hybrid model segments in one forward pass at ``t = 0``; a segmenter that samples its mask
by diffusion runs one forward pass of its network per reverse step. The second is timed with this network's own
reverse process (``monai_hybrid.sampling.sample_pairs``, MONAI's DDIM scheduler, ``--sample-steps`` steps).

Each pair is run in alternating rounds in one process so that machine load hits both alike, and the script prints
the median ratios.

    python experiments/measure_step_time.py                       # bundle defaults: 2D, batch 16 of 96 x 96, CPU
    python experiments/measure_step_time.py --spatial-dims 3 --size 64 --batch 2 --device cuda --amp
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from monai.engines import SupervisedTrainer
from monai.inferers import DiffusionInferer
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from monai_hybrid.engines import HybridPrepareBatch
from monai_hybrid.losses import pretraining_loss
from monai_hybrid.networks import HybridDiffusionUNet
from monai_hybrid.sampling import sample_pairs


def _trainer(mode: str, net, batch, steps: int, device, amp: bool) -> SupervisedTrainer:
    sched = DDPMScheduler(num_train_timesteps=1000, prediction_type="sample", clip_sample=False)
    return SupervisedTrainer(
        device=device,
        max_epochs=1,
        train_data_loader=[batch] * steps,
        network=net,
        optimizer=torch.optim.AdamW(net.parameters(), 1e-4),
        loss_function=pretraining_loss(mode, 1, 1.0, 0.5),
        prepare_batch=HybridPrepareBatch(sched, mode=mode, t0_fraction=0.2),
        inferer=DiffusionInferer(sched),
        amp=amp,
        decollate=False,
    )


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(trainer: SupervisedTrainer, device) -> float:
    trainer.state.epoch = 0
    trainer.state.iteration = 0
    trainer.state.max_epochs = None  # a fresh run each time
    _sync(device)
    start = time.perf_counter()
    trainer.run()
    _sync(device)
    return (time.perf_counter() - start) / trainer.state.epoch_length


@torch.no_grad()
def _time_inference(net, image: torch.Tensor, sample_steps: int, device) -> tuple[float, float]:
    """Seconds of one-pass segmentation and of segmentation by ``sample_steps`` reverse steps, same batch."""
    net.eval()
    _sync(device)
    start = time.perf_counter()
    net(image, output="mask").argmax(1)
    _sync(device)
    one_pass = time.perf_counter() - start
    scheduler = DDIMScheduler(num_train_timesteps=1000, prediction_type="sample", clip_sample=False)
    start = time.perf_counter()
    sample_pairs(net, scheduler, sample_steps, tuple(image.shape), device=device)
    _sync(device)
    return one_pass, time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spatial-dims", type=int, default=2)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 64])
    p.add_argument("--steps", type=int, default=5, help="steps per round")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--sample-steps", type=int, default=50, help="reverse steps of the sampling segmenter")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    attention = [False] * (len(args.channels) - 1) + [True]
    net = HybridDiffusionUNet(
        args.spatial_dims,
        1,
        4,
        channels=args.channels,
        attention_levels=attention,
        num_head_channels=32,
        norm_num_groups=16,
        use_flash_attention=True,
    ).to(device)
    shape = (args.batch, 1) + (args.size,) * args.spatial_dims
    batch = {"image": torch.randn(shape, device=device), "label": torch.randint(0, 4, shape, device=device)}
    trainers = {m: _trainer(m, net, batch, args.steps, device, args.amp) for m in ("hybrid", "supervised")}
    for t in trainers.values():  # warm-up
        _time(t, device)
    ratios, times = [], {m: [] for m in trainers}
    for _ in range(args.rounds):
        for m, t in trainers.items():
            times[m].append(_time(t, device))
        ratios.append(times["hybrid"][-1] / times["supervised"][-1])
    inference = [_time_inference(net, batch["image"], args.sample_steps, device) for _ in range(args.rounds // 2 + 1)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    sys.stdout.write(
        f"device: {name}; {args.spatial_dims}D batch {shape}, channels {args.channels}, amp {args.amp}\n"
        f"hybrid step     median {statistics.median(times['hybrid']) * 1e3:.1f} ms\n"
        f"supervised step median {statistics.median(times['supervised']) * 1e3:.1f} ms\n"
        f"ratio hybrid / supervised: median {statistics.median(ratios):.3f} "
        f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})\n"
        f"one-pass segmentation    median {statistics.median(t[0] for t in inference) * 1e3:.1f} ms per batch\n"
        f"{args.sample_steps}-step sampling segmentation median {statistics.median(t[1] for t in inference):.2f} s "
        f"per batch\nratio sampling / one-pass: median {statistics.median(t[1] / t[0] for t in inference):.1f}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
