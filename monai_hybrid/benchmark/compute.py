"""The compute of a training run, counted: FLOPs of one training step of the network a run trained, times its steps.
The benchmark stores both with each pretraining record, so results can be read against compute (docs/results.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["step_flops"]


def step_flops(network: torch.nn.Module, input_shape: Sequence[int], num_train_timesteps: int = 1000) -> int:
    """FLOPs of one training step of ``network`` (forward and backward) on a batch of ``input_shape``, counted by
    PyTorch's ``FlopCounterMode`` (convolutions, matrix multiplications and attention; elementwise work is not
    counted, and the count does not depend on the precision the step runs in). Attention runs through PyTorch's math
    kernel while counting: the fused CPU kernel has no FLOP formula and would count as nothing, and the count must
    not depend on which kernel the machine picks.

    Args:
        network: a ``HybridDiffusionUNet`` (any network called as ``network(x, timesteps)``); its gradients are left
            as they were.
        input_shape: (N, C, *spatial), a training batch: ``batch_volumes * samples_per_volume`` crops of ``roi_size``.
        num_train_timesteps: the noise levels drawn from.

    Raises:
        ValueError: ``input_shape`` has fewer than 3 dimensions.
    """
    if len(input_shape) < 3:
        raise ValueError(f"step_flops: 'input_shape' must be (N, C, *spatial), got {tuple(input_shape)}.")
    device = next(network.parameters()).device
    x = torch.randn(tuple(input_shape), device=device)
    t = torch.randint(0, num_train_timesteps, (input_shape[0],), device=device)
    saved = {n: None if p.grad is None else p.grad.clone() for n, p in network.named_parameters()}
    training = network.training
    network.train()
    counter = FlopCounterMode(display=False)
    try:
        with counter, sdpa_kernel(SDPBackend.MATH):
            network(x, t).float().sum().backward()
    finally:
        network.train(training)
        for name, p in network.named_parameters():
            p.grad = saved[name]
    return int(counter.get_total_flops())
