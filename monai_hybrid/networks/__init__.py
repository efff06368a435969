"""Networks: the hybrid diffusion U-Net."""

from monai_hybrid.networks.head_growth import (
    NEW_CLASS_PRIOR,
    NewClassRule,
    appended_classes,
    grow_rows,
    grow_state_dict,
)
from monai_hybrid.networks.hybrid_unet import HybridDiffusionUNet, hybrid_unet_from_settings
from monai_hybrid.networks.transfer import (
    TransferReport,
    WeightTransferError,
    transfer_weights,
)

__all__ = [
    "NEW_CLASS_PRIOR",
    "HybridDiffusionUNet",
    "NewClassRule",
    "TransferReport",
    "appended_classes",
    "grow_rows",
    "grow_state_dict",
    "hybrid_unet_from_settings",
    "WeightTransferError",
    "transfer_weights",
]
