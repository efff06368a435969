"""Networks: the hybrid diffusion U-Net."""

from monai_hybrid.networks.hybrid_unet import OUTPUTS, HybridDiffusionUNet
from monai_hybrid.networks.transfer import (
    PretrainedWeightsHandler,
    TransferReport,
    WeightTransferError,
    transfer_weights,
)

__all__ = [
    "HybridDiffusionUNet",
    "OUTPUTS",
    "PretrainedWeightsHandler",
    "TransferReport",
    "WeightTransferError",
    "transfer_weights",
]
