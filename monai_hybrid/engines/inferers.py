"""Inferers for a hybrid network: segment a clean image at t = 0 with the mask head only."""

from __future__ import annotations

import functools
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

__all__ = ["MaskInferer"]


class MaskInferer(Inferer):
    """Run any MONAI inferer on the network's mask output at t = 0: one forward pass per window or slice.

    It asks the network for ``output="mask"`` with no timesteps (t = 0, a clean image), so a network trained in
    ``output_mode="all"`` segments exactly as an inference bundle with ``output_mode="mask"`` does.

    Args:
        inferer: the MONAI inferer that tiles the input: ``SimpleInferer`` (default), ``SlidingWindowInferer`` for
            3D patches, ``SliceInferer`` for a 2D network on volumes.
    """

    def __init__(self, inferer: Inferer | None = None) -> None:
        super().__init__()
        if inferer is not None and not callable(inferer):
            raise ValueError(f"{type(self).__name__}: 'inferer' must be a MONAI inferer, got {type(inferer).__name__}.")
        self.inferer = inferer or SimpleInferer()

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Mask logits (N, K, *spatial) of ``inputs`` (N, C, *spatial)."""
        return self.inferer(inputs, functools.partial(network, output="mask"), *args, **kwargs)
