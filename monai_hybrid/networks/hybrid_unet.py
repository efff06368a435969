"""The hybrid network: one diffusion U-Net body, an image head and a mask head.

Sauvalle & Salzmann, "Hybrid diffusion models: combining supervised and generative pretraining for label-efficient
fine-tuning of segmentation models", arXiv 2408.03433, 2024: given a noisy image ``x_t`` and its timestep ``t``,
the network predicts both the image target (the clean image ``E[x | x_t]``, the noise, or the velocity) and the
segmentation logits. At ``t = 0`` on a clean image it is a plain segmenter: one forward pass, mask head only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets import DiffusionModelUNet
from torch import nn

from monai_hybrid.options import NetworkOutput, check_spatial_dims, choose

__all__ = ["HybridDiffusionUNet", "hybrid_unet_from_settings"]

#: What ``forward`` can return: ``all`` = image head then mask head on the channel axis.
_OUTPUTS = frozenset(NetworkOutput)  # a StrEnum member hashes like its string


def _zero_initialised(module: nn.Module) -> nn.Module:
    """``module`` with every parameter set to 0 (the image head starts by predicting 0, as the output convolution of
    MONAI's diffusion UNet does)."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class HybridDiffusionUNet(nn.Module):
    """MONAI's ``DiffusionModelUNet`` body with two (optionally three) named heads.

    * ``image_head``: ``in_channels`` outputs, the image prediction of the diffusion objective (zero-initialised,
      as the last layer of a diffusion U-Net is);
    * ``mask_head``: ``num_classes`` segmentation logits;
    * ``projection_head`` (only when ``projection_dim > 0``): a two-layer 1x1 convolution projection of the decoder
      features for pixel contrastive pretraining (Zhao et al. 2020); fine-tuning drops it.

    The heads are separate modules so that weight transfer can keep or re-initialise them by name.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels ``C``.
        num_classes: segmentation classes ``K`` including background.
        channels: feature channels per level of the U-Net.
        attention_levels: self-attention per level (keep it to low-resolution levels).
        num_res_blocks: residual blocks per level.
        num_head_channels: channels per attention head, per level or one value.
        norm_num_groups: group-norm groups; every entry of ``channels`` must be a multiple of it.
        resblock_updown: use residual blocks for down- and up-sampling.
        use_flash_attention: use ``scaled_dot_product_attention`` (same parameters).
        projection_dim: output channels of the contrastive projection head (0: no head).
        output_mode: what ``forward`` returns unless told otherwise: a ``NetworkOutput``. ``"mask"`` makes
            ``network(x)`` a plain segmenter (inference bundles, MONAI Label).

    Example::

        net = HybridDiffusionUNet(spatial_dims=2, in_channels=1, num_classes=4, channels=(8, 16))
        out = net(torch.randn(2, 1, 16, 16), timesteps=torch.tensor([10, 500]))  # (2, 1 + 4, 16, 16)
        logits = net(torch.randn(2, 1, 16, 16), output="mask")                  # t = 0: (2, 4, 16, 16)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64, 64),
        attention_levels: Sequence[bool] = (False, False, True),
        num_res_blocks: Sequence[int] | int = 1,
        num_head_channels: Sequence[int] | int = 32,
        norm_num_groups: int = 16,
        resblock_updown: bool = False,
        use_flash_attention: bool = False,
        projection_dim: int = 0,
        output_mode: str = "all",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        spatial_dims = check_spatial_dims(spatial_dims, name)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"{name}: 'in_channels' must be a positive integer, got {in_channels!r}.")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"{name}: 'num_classes' must be an integer >= 2 (background and at least one class), got "
                f"{num_classes!r}."
            )
        channels = tuple(int(c) for c in channels)
        if len(channels) < 2:
            raise ValueError(f"{name}: 'channels' needs at least 2 levels, got {channels}.")
        if any(c % norm_num_groups for c in channels):
            raise ValueError(
                f"{name}: every entry of 'channels' {channels} must be a multiple of 'norm_num_groups' "
                f"({norm_num_groups})."
            )
        attention_levels = tuple(bool(a) for a in attention_levels)
        if len(attention_levels) != len(channels):
            raise ValueError(
                f"{name}: 'attention_levels' needs one entry per level of 'channels' ({len(channels)}), got "
                f"{len(attention_levels)}."
            )
        heads = (num_head_channels,) * len(channels) if isinstance(num_head_channels, int) else tuple(num_head_channels)
        if len(heads) != len(channels):
            raise ValueError(f"{name}: 'num_head_channels' needs one entry per level, got {len(heads)}.")
        for level, (c, att, h) in enumerate(zip(channels, attention_levels, heads, strict=False)):
            if att and (h <= 0 or c % h):
                raise ValueError(
                    f"{name}: 'num_head_channels' ({h}) must divide the channels ({c}) of attention level {level}."
                )
        if not isinstance(projection_dim, int) or projection_dim < 0:
            raise ValueError(f"{name}: 'projection_dim' must be a non-negative integer, got {projection_dim!r}.")
        output_mode = choose(output_mode, NetworkOutput, name, "output_mode")
        if output_mode == "projection" and projection_dim == 0:
            raise ValueError(f"{name}: output_mode 'projection' needs 'projection_dim' > 0.")

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.output_mode = output_mode
        self.min_size_divisor = 2 ** (len(channels) - 1)
        self.unet = DiffusionModelUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=in_channels,
            num_res_blocks=num_res_blocks,
            channels=channels,
            attention_levels=attention_levels,
            norm_num_groups=norm_num_groups,
            resblock_updown=resblock_updown,
            num_head_channels=list(heads),
            use_flash_attention=use_flash_attention,
        )
        # Keep the body's output normalisation and activation; the final convolution becomes the heads. MONAI's
        # ``out`` is Sequential(GroupNorm, SiLU, Convolution), an assumption tested directly in
        # tests/networks/test_monai_assumptions.py.
        self.unet.out = self.unet.out[:2]
        features = channels[0]

        def conv(out_channels: int, kernel_size: int) -> Convolution:
            return Convolution(
                spatial_dims,
                features,
                out_channels,
                strides=1,
                kernel_size=kernel_size,
                padding=kernel_size // 2,
                conv_only=True,
            )

        self.image_head = _zero_initialised(conv(in_channels, 3))
        self.mask_head = conv(num_classes, 3)
        self.projection_head: nn.Module | None = None
        if projection_dim:
            self.projection_head = nn.Sequential(
                conv(features, 1),
                nn.ReLU(inplace=True),
                Convolution(spatial_dims, features, projection_dim, kernel_size=1, conv_only=True),
            )

    def _timesteps(self, x: torch.Tensor, timesteps: torch.Tensor | int | float | None) -> torch.Tensor:
        n = x.shape[0]
        if timesteps is None:
            return torch.zeros(n, dtype=torch.long, device=x.device)
        t = torch.as_tensor(timesteps, device=x.device)
        if t.ndim == 0 or t.numel() == 1:
            return t.reshape(1).expand(n)
        if t.ndim != 1 or t.shape[0] != n:
            raise ValueError(
                f"{type(self).__name__}: 'timesteps' must be a scalar or have shape (N,) = ({n},), got "
                f"{tuple(t.shape)}."
            )
        return t

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor | int | float | None = None,
        context: torch.Tensor | None = None,
        output: str | None = None,
    ) -> torch.Tensor:
        """Predict from a (noisy) image.

        Args:
            x: image ``x_t``, shape (N, C, *spatial); every spatial size divisible by ``min_size_divisor``.
            timesteps: diffusion timesteps, shape (N,) or a scalar; ``None`` means t = 0 (a clean image).
            context: must be ``None`` (accepted because MONAI's ``DiffusionInferer`` passes ``context=None``).
            output: a ``NetworkOutput``; ``None`` uses ``output_mode``.

        Returns:
            ``all``: (N, C + K, *spatial), the image prediction then the mask logits; ``image``: (N, C, *spatial);
            ``mask``: (N, K, *spatial); ``features``: decoder features (N, channels[0], *spatial);
            ``projection``: L2-normalised embeddings (N, projection_dim, *spatial).
        """
        if context is not None:
            raise ValueError(f"{type(self).__name__}: conditioning ('context') is not supported.")
        mode = output or self.output_mode
        if mode not in _OUTPUTS:
            choose(mode, NetworkOutput, type(self).__name__, "output")  # raises, naming the valid outputs
        spatial = tuple(x.shape[2:])
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (N, {self.in_channels}, "
                f"{', '.join(['*'] * self.spatial_dims)}), got {tuple(x.shape)}."
            )
        if any(s % self.min_size_divisor for s in spatial):
            raise ValueError(
                f"{type(self).__name__}: spatial sizes {spatial} must be divisible by {self.min_size_divisor} "
                "(2 ** (levels - 1)); pad the input, e.g. with DivisiblePadd."
            )
        h = self.unet(x, self._timesteps(x, timesteps))
        if mode == "features":
            return h
        if mode == "mask":
            return self.mask_head(h)
        if mode == "image":
            return self.image_head(h)
        if mode == "projection":
            if self.projection_head is None:
                raise ValueError(f"{type(self).__name__}: output 'projection' needs 'projection_dim' > 0.")
            return F.normalize(self.projection_head(h), dim=1)
        return torch.cat([self.image_head(h), self.mask_head(h)], dim=1)


def hybrid_unet_from_settings(
    settings: Mapping[str, Any], output_mode: str = "all", projection_dim: int = 0
) -> HybridDiffusionUNet:
    """The ``HybridDiffusionUNet`` that model settings describe (``monai_hybrid.model_settings``).

    Args:
        settings: a mapping with ``spatial_dims``, ``in_channels``, ``class_names`` and ``network_args`` (the other
            constructor arguments: ``channels``, ``attention_levels``, ...).
        output_mode: what ``forward`` returns by default (``"mask"`` for inference and MONAI Label).
        projection_dim: channels of the contrastive projection head (0: none).

    Raises:
        ValueError: a key is missing, naming it.
    """
    missing = [k for k in ("spatial_dims", "in_channels", "class_names", "network_args") if k not in settings]
    if missing:
        raise ValueError(f"hybrid_unet_from_settings: 'settings' lacks {missing}.")
    return HybridDiffusionUNet(
        spatial_dims=int(settings["spatial_dims"]),
        in_channels=int(settings["in_channels"]),
        num_classes=len(settings["class_names"]),
        **dict(settings["network_args"]),
        projection_dim=int(projection_dim),
        output_mode=output_mode,
    )
