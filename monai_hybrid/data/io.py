"""Reading a volume and its geometry from NIfTI (nibabel) or anything SimpleITK reads (NRRD, MHA, DICOM series)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Volume", "read_volume", "read_geometry"]

_NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Volume:
    """A volume in voxel-index order (x, y, z[, channels]) with its world geometry.

    Attributes:
        array: the voxels; ``None`` when only the header was read.
        shape: spatial shape (3 values).
        spacing: voxel size per spatial axis in mm.
        affine: (4, 4) voxel-to-world matrix in RAS mm.
    """

    array: np.ndarray | None
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    affine: np.ndarray


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(_NIFTI_SUFFIXES)


def _read_nifti(path: Path, with_array: bool) -> Volume:
    import nibabel as nib

    img = nib.load(str(path))
    shape = tuple(int(s) for s in img.shape[:3])
    spacing = tuple(float(s) for s in img.header.get_zooms()[:3])
    array = np.asarray(img.dataobj) if with_array else None
    return Volume(array=array, shape=shape, spacing=spacing, affine=np.asarray(img.affine, dtype=np.float64))


def _read_sitk(path: Path, with_array: bool) -> Volume:
    import SimpleITK as sitk

    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        files = reader.GetGDCMSeriesFileNames(str(path))
        if not files:
            raise OSError(f"no DICOM series found in folder '{path}'")
        reader.SetFileNames(files)
        image = reader.Execute()
    else:
        image = sitk.ReadImage(str(path))
    spacing = tuple(float(s) for s in image.GetSpacing())[:3]
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(image.GetDimension(), -1)[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = direction @ np.diag(spacing)
    affine[:3, 3] = np.asarray(image.GetOrigin()[:3])
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # ITK's LPS world -> RAS
    shape = tuple(int(s) for s in image.GetSize()[:3])
    array = None
    if with_array:
        array = sitk.GetArrayFromImage(image)  # (z, y, x[, c])
        array = np.moveaxis(array, [0, 1, 2], [2, 1, 0]) if array.ndim >= 3 else array
    return Volume(array=array, shape=shape, spacing=spacing, affine=affine)


def read_volume(path: str | os.PathLike, with_array: bool = True) -> Volume:
    """Read ``path``: NIfTI through nibabel, other files and DICOM folders through SimpleITK.

    Raises:
        FileNotFoundError: the path does not exist.
        OSError / RuntimeError / ValueError: the reader could not read it (the reader's message is kept).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(str(path))
    return _read_nifti(path, with_array) if _is_nifti(path) else _read_sitk(path, with_array)


def read_geometry(path: str | os.PathLike) -> Volume:
    """Only the header of ``path`` (``array`` is ``None``)."""
    return read_volume(path, with_array=False)
