"""A MONAI image reader backed by SimpleITK: NRRD, MHA/MHD and DICOM series folders without the ``itk`` package.

MONAI's own readers need ``itk`` (``ITKReader``), ``pynrrd`` (``NrrdReader``) or ``pydicom`` (``PydicomReader``);
this project depends on SimpleITK instead, and this reader plugs it into ``LoadImage``/``LoadImaged``
(``reader=SimpleITKReader``). Arrays come out in (x, y, z) order with a RAS affine, like ``NibabelReader``'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import ImageReader
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

from monai_hybrid.data.io import Volume, read_volume

__all__ = ["SimpleITKReader", "SUFFIXES"]

SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")  # NIfTI stays with NibabelReader


class SimpleITKReader(ImageReader):
    """Read images with SimpleITK (a folder is read as a DICOM series).

    Args:
        dtype: data type of the returned array.
    """

    def __init__(self, dtype: Any = np.float32, **kwargs: Any) -> None:
        super().__init__()
        self.dtype = dtype

    def verify_suffix(self, filename: Sequence[os.PathLike] | os.PathLike) -> bool:
        for name in ensure_tuple(filename):
            path = Path(name)
            if not (path.is_dir() or str(path).lower().endswith(SUFFIXES)):
                return False
        return True

    def read(self, data: Sequence[os.PathLike] | os.PathLike, **kwargs: Any) -> Volume | list[Volume]:
        volumes = [read_volume(name) for name in ensure_tuple(data)]
        return volumes if len(volumes) > 1 else volumes[0]

    def get_data(self, img: Volume | list[Volume]) -> tuple[np.ndarray, dict]:
        arrays, meta = [], {}
        for vol in ensure_tuple(img):
            arrays.append(np.asarray(vol.array, dtype=self.dtype))
            if not meta:
                meta = {
                    MetaKeys.ORIGINAL_AFFINE: vol.affine.copy(),
                    MetaKeys.AFFINE: vol.affine.copy(),
                    MetaKeys.SPATIAL_SHAPE: np.asarray(vol.shape),
                    MetaKeys.SPACE: SpaceKeys.RAS,
                    MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan") if vol.array.ndim == 3 else -1,
                }
        if len(arrays) == 1:
            return arrays[0], meta
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
        return np.stack(arrays, axis=0), meta
