"""monai-hybrid: hybrid diffusion pretraining for label-efficient segmentation, as a MONAI plugin."""

__version__ = "0.2.0"
