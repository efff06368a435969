"""Time a hybrid training step against a supervised training step, and one-pass segmentation against sampling.

Training: both run through MONAI's SupervisedTrainer with the same HybridDiffusionUNet, optimiser, batch and
inferer; only the pretraining mode differs (hybrid: noising, image + mask loss; supervised: clean input, mask loss).

Inference: the fine-tuned hybrid model segments in one forward pass at ``t = 0``; a segmenter that samples its mask
by diffusion runs one forward pass of its network per reverse step. The second is timed with this network's own
reverse process (``monai_hybrid.sampling.sample_pairs``, MONAI's DDIM scheduler, ``--sample-steps`` steps).

Precision: every step is run in each of ``--precisions`` (``monai_hybrid.options.Precision``: float32, and
cpu_bfloat16 on a CPU or cuda_amp on a GPU, as the bundle's ``amp`` setting chooses them), through the same public
route as the bundle (``monai_hybrid.engines.with_precision`` on the trainer's inferer; MONAI's own ``amp`` on CUDA).

How close to the machine's limit: the FLOPs of one training step are counted (``torch.utils.flop_counter``, forward
and backward; the count does not depend on the precision), divided by the median step time (achieved GFLOP/s), and
set beside what one large matrix multiplication reaches on the same threads in the same precision (the reference
peak, best of several).

Every variant is run in alternating rounds in one process so that machine load hits all alike, and the script prints
the median ratios.

    python experiments/measure_step_time.py                       # bundle defaults: 2D, batch 16 of 96 x 96, CPU
    python experiments/measure_step_time.py --spatial-dims 3 --size 64 --batch 2 --device cuda
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
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from monai_hybrid.engines import HybridPrepareBatch, with_precision
from monai_hybrid.losses import pretraining_loss
from monai_hybrid.networks import HybridDiffusionUNet
from monai_hybrid.options import Precision, choose
from monai_hybrid.sampling import sample_pairs

#: the dtype of each precision's matrix multiplication reference
_MATMUL_DTYPE = {
    Precision.FLOAT32: torch.float32,
    Precision.CPU_BFLOAT16: torch.bfloat16,
    Precision.CUDA_AMP: torch.float16,
}


def _trainer(mode: str, net, batch, steps: int, device, precision: Precision) -> SupervisedTrainer:
    sched = DDPMScheduler(num_train_timesteps=1000, prediction_type="sample", clip_sample=False)
    return SupervisedTrainer(
        device=device,
        max_epochs=1,
        train_data_loader=[batch] * steps,
        network=net,
        optimizer=torch.optim.AdamW(net.parameters(), 1e-4),
        loss_function=pretraining_loss(mode, 1, 1.0, 0.5),
        prepare_batch=HybridPrepareBatch(sched, mode=mode, t0_fraction=0.2),
        inferer=with_precision(DiffusionInferer(sched), precision),
        amp=precision is Precision.CUDA_AMP,
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


def _step_flops(mode: str, net, batch, device) -> int:
    """FLOPs of one ``mode`` training step (forward and backward), counted by PyTorch's FlopCounterMode (in float32:
    autocast changes the dtype of the operations, not their count; attention through the math kernel, which it can
    count)."""
    trainer = _trainer(mode, net, batch, 1, device, Precision.FLOAT32)
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):  # the fused CPU attention kernel has no FLOP formula
        trainer.run()
    return counter.get_total_flops()


def _matmul_gflops(precision: Precision, device, n: int, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` n x n matrix multiplications in ``precision``'s dtype on ``device``."""
    dtype = _MATMUL_DTYPE[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


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
    p.add_argument(
        "--precisions",
        nargs="+",
        default=None,
        help="precisions to compare (float32, cpu_bfloat16, cuda_amp); default: float32 and the device's 16-bit one",
    )
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n matmul reference")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    sixteen = Precision.CUDA_AMP if device.type == "cuda" else Precision.CPU_BFLOAT16
    names = args.precisions or [Precision.FLOAT32, sixteen]
    precisions = [choose(n, Precision, "measure_step_time", "--precisions") for n in names]
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
    variants = [(m, q) for q in precisions for m in ("hybrid", "supervised")]
    trainers = {v: _trainer(v[0], net, batch, args.steps, device, v[1]) for v in variants}
    flops = {m: _step_flops(m, net, batch, device) for m in ("hybrid", "supervised")}
    for t in trainers.values():  # warm-up
        _time(t, device)
    times = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v, t in trainers.items():
            times[v].append(_time(t, device))
    median = {v: statistics.median(ts) for v, ts in times.items()}
    peaks = {q: _matmul_gflops(q, device, args.matmul_size) for q in precisions}
    inference = [_time_inference(net, batch["image"], args.sample_steps, device) for _ in range(args.rounds // 2 + 1)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    out = [
        f"device: {name} ({torch.backends.cpu.get_cpu_capability()} kernels); {args.spatial_dims}D batch {shape}, "
        f"channels {args.channels}",
        f"FLOPs per training step (forward + backward): hybrid {flops['hybrid'] / 1e9:.1f} GFLOP, "
        f"supervised {flops['supervised'] / 1e9:.1f} GFLOP",
        "",
        f"| step | precision | median ms | GFLOP/s | {args.matmul_size}^3 matmul GFLOP/s | share of matmul |",
        "|---|---|---|---|---|---|",
    ]
    for mode, q in variants:
        achieved = flops[mode] / median[(mode, q)] / 1e9
        out.append(
            f"| {mode} | {q} | {median[(mode, q)] * 1e3:.1f} | {achieved:.1f} | {peaks[q]:.1f} | "
            f"{achieved / peaks[q]:.0%} |"
        )
    out.append("")
    for q in precisions:
        ratios = [h / s for h, s in zip(times[("hybrid", q)], times[("supervised", q)], strict=True)]
        out.append(
            f"ratio hybrid / supervised ({q}): median {statistics.median(ratios):.3f} "
            f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
        )
    for q in precisions[1:]:
        ratios = [a / b for a, b in zip(times[("hybrid", precisions[0])], times[("hybrid", q)], strict=True)]
        out.append(
            f"ratio hybrid step {precisions[0]} / {q}: median {statistics.median(ratios):.3f} "
            f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
        )
    out += [
        f"one-pass segmentation    median {statistics.median(t[0] for t in inference) * 1e3:.1f} ms per batch",
        f"{args.sample_steps}-step sampling segmentation median {statistics.median(t[1] for t in inference):.2f} s "
        "per batch",
        f"ratio sampling / one-pass: median {statistics.median(t[1] / t[0] for t in inference):.1f}",
    ]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
