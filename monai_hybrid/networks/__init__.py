"""Networks: the hybrid diffusion U-Net."""

from monai_hybrid.networks.hybrid_unet import HybridDiffusionUNet, hybrid_unet_from_settings
from monai_hybrid.networks.transfer import (
    TransferReport,
    WeightTransferError,
    transfer_weights,
)

__all__ = [
    "HybridDiffusionUNet",
    "TransferReport",
    "hybrid_unet_from_settings",
    "WeightTransferError",
    "transfer_weights",
]
