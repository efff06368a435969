"""monai-hybrid: hybrid diffusion pretraining for label-efficient segmentation, as a MONAI plugin."""

#: The package and the bundle it ships move together: this is the bundle's version too (its configs/metadata.json
#: ``version``, whose ``changelog`` is the changelog of both; tests/test_version.py keeps them equal).
__version__ = "0.13.0"
