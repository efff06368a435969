"""Inferers for a hybrid network: segment a clean image at t = 0 with the mask head only."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer, SliceInferer, SlidingWindowInferer

__all__ = ["MaskInferer", "window_inferer"]


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


def window_inferer(
    spatial_dims: int,
    roi_size: Sequence[int],
    background: float = 0.0,
    sw_batch_size: int | None = None,
    overlap: float = 0.25,
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

    Raises:
        ValueError: ``spatial_dims`` is not 2 or 3, or ``roi_size`` does not have ``spatial_dims`` sizes.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"window_inferer: 'spatial_dims' must be 2 or 3, got {spatial_dims!r}.")
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
    return MaskInferer(tiles)
