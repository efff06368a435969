"""Subjects of the phantom: the template under a random smooth deformation, with anatomical variety.

Each subject is a random draw of:

* a small affine (rotation up to 4 degrees, scaling by up to 5 %, translation up to 4 mm);
* a smooth displacement field (cubic interpolation of a coarse grid of Gaussian control points, a few mm);
* a ventricle size: a radial magnification around the lateral ventricles (smaller or larger ventricles);
* a cortical thickness: the white-matter boundary moved in or out (thinner or thicker grey matter).

All of it is a backward map from the subject's world coordinates (mm) to the template's, so any voxel grid (any site,
any spacing or orientation) samples the same subject. White-matter lesions (``lesions``) are maps in template space
that the same map deforms; ``tissue_fractions`` takes them out of the white matter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monai_hybrid.data.lesions import LesionMap
from monai_hybrid.data.template import VENTRICLE_CENTRE_MM, TemplateMaps

__all__ = [
    "Grid",
    "SubjectAnatomy",
    "sample_anatomy",
    "tissue_fractions",
    "CLASS_NAMES",
    "FOV_CENTRE_MM",
    "FOV_SIZE_MM",
    "site_grid",
    "smooth_field",
    "template_coordinates",
]

#: Label values of the phantom (lesion only when lesions are switched on).
CLASS_NAMES: tuple[str, ...] = ("background", "csf", "grey_matter", "white_matter", "lesion")

#: Field of view of every scan: a box around the brain, in MNI world coordinates (mm).
FOV_CENTRE_MM = np.array([0.0, -17.0, 5.0])
FOV_SIZE_MM = np.array([160.0, 192.0, 160.0])

_CONTROL_POINTS = (5, 6, 5)
_VENTRICLE_SIGMA_MM = 22.0


@dataclass(frozen=True)
class Grid:
    """A voxel grid in world space.

    Attributes:
        shape: number of voxels per axis.
        affine: (4, 4) voxel-index-to-world (RAS mm) matrix.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def world_coordinates(self) -> np.ndarray:
        """World coordinates of all voxel centres, shape (3, X, Y, Z)."""
        idx = np.indices(self.shape, dtype=np.float32).reshape(3, -1)
        world = self.affine[:3, :3].astype(np.float32) @ idx + self.affine[:3, 3:4].astype(np.float32)
        return world.reshape(3, *self.shape)


def site_grid(
    spacing: np.ndarray | tuple[float, float, float],
    orientation: str = "RAS",
    size_mm: np.ndarray | tuple[float, float, float] = FOV_SIZE_MM,
    centre_mm: np.ndarray | tuple[float, float, float] = FOV_CENTRE_MM,
) -> Grid:
    """The grid that covers a field of view (by default the phantom's box around the brain) with voxels of ``spacing``.

    Args:
        spacing: voxel size per axis in mm.
        orientation: ``"RAS"`` (axes point right, anterior, superior) or ``"LPS"`` (left, posterior, superior, the
            DICOM convention).
        size_mm: extent of the field of view per axis, mm.
        centre_mm: centre of the field of view in MNI world coordinates, mm.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    shape = tuple(int(n) for n in np.round(np.asarray(size_mm, dtype=np.float64) / spacing))
    signs = np.array([1.0, 1.0, 1.0]) if orientation == "RAS" else np.array([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = np.diag(signs * spacing)
    affine[:3, 3] = np.asarray(centre_mm, dtype=np.float64) - signs * spacing * (np.asarray(shape) - 1) / 2.0
    return Grid(shape=shape, affine=affine)


@dataclass(frozen=True)
class SubjectAnatomy:
    """One subject: the random parameters that deform the template.

    Attributes:
        affine: (4, 4) template-from-subject world transform (rotation, scaling, translation).
        control_displacement: (3, *control grid) displacement in mm at control points spanning the field of view.
        ventricle_scale: radial magnification around the ventricles (> 0: larger ventricles).
        cortex_shift: logit shift of the white-matter map (> 0: more white matter, thinner cortex).
    """

    affine: np.ndarray
    control_displacement: np.ndarray
    ventricle_scale: float
    cortex_shift: float


def _rotation(angles_rad: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles_rad)
    sx, sy, sz = np.sin(angles_rad)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def sample_anatomy(rng: np.random.Generator, deformation_mm: float = 2.5) -> SubjectAnatomy:
    """Draw a random subject.

    Args:
        rng: the subject's random generator.
        deformation_mm: standard deviation of the control-point displacements.

    Returns:
        The subject's anatomy parameters.
    """
    rotation = _rotation(np.deg2rad(rng.uniform(-4.0, 4.0, size=3)))
    scale = rng.uniform(0.95, 1.05, size=3)
    translation = rng.uniform(-4.0, 4.0, size=3)
    # subject = R S template + t  ->  template = S^-1 R^T (subject - t)
    inverse = np.eye(4)
    inverse[:3, :3] = np.diag(1.0 / scale) @ rotation.T
    inverse[:3, 3] = -inverse[:3, :3] @ translation
    control = rng.normal(0.0, deformation_mm, size=(3, *_CONTROL_POINTS))
    return SubjectAnatomy(
        affine=inverse,
        control_displacement=control,
        ventricle_scale=float(rng.uniform(-0.15, 0.4)),
        cortex_shift=float(rng.uniform(-1.0, 1.0)),
    )


def smooth_field(control: np.ndarray, world: np.ndarray) -> np.ndarray:
    """Cubic interpolation of control values spanning the field of view at ``world`` (3, ...) points."""
    lo = FOV_CENTRE_MM - FOV_SIZE_MM / 2
    shape = np.asarray(control.shape[-3:])
    coords = [(world[i] - lo[i]) / FOV_SIZE_MM[i] * (shape[i] - 1) for i in range(3)]
    out = [ndimage.map_coordinates(c, coords, order=3, mode="nearest") for c in control.reshape(-1, *shape)]
    return np.stack(out).reshape(*control.shape[:-3], *world.shape[1:])


def template_coordinates(anatomy: SubjectAnatomy, grid: Grid) -> np.ndarray:
    """Template world coordinates (3, X, Y, Z) of the subject's points at the voxels of ``grid``."""
    world = grid.world_coordinates()
    x = np.tensordot(anatomy.affine[:3, :3], world, axes=1) + anatomy.affine[:3, 3].reshape(3, 1, 1, 1)
    x += smooth_field(anatomy.control_displacement, world)
    # Ventricle size: magnify (scale > 0) or shrink the region around the ventricles.
    c = VENTRICLE_CENTRE_MM.reshape(3, 1, 1, 1)
    offset = x - c
    weight = np.exp(-np.sum(offset**2, axis=0) / (2 * _VENTRICLE_SIGMA_MM**2))
    return (x - anatomy.ventricle_scale * offset * weight).astype(np.float32)


def tissue_fractions(
    anatomy: SubjectAnatomy, grid: Grid, template: TemplateMaps, lesions: LesionMap | None = None
) -> np.ndarray:
    """Partial-volume fractions of every class at the voxels of ``grid``.

    Lesions replace white matter: a voxel's lesion fraction is at most its white-matter fraction, and what it takes
    is taken from the white matter (the other classes are those of the same subject without lesions).

    Args:
        anatomy: the subject.
        grid: the voxel grid of the scan.
        template: template maps, already blurred to the partial volume of the grid's voxels.
        lesions: the subject's lesion map in template space, blurred like ``template``; ``None``: no lesions.

    Returns:
        Array (len(CLASS_NAMES), X, Y, Z), float32, summing to 1 over the first axis.
    """
    x = template_coordinates(anatomy, grid)
    inv = np.linalg.inv(template.affine)
    idx = np.tensordot(inv[:3, :3].astype(np.float32), x, axes=1) + inv[:3, 3].reshape(3, 1, 1, 1).astype(np.float32)
    sample = functools.partial(ndimage.map_coordinates, coordinates=idx, order=1, mode="constant", cval=0.0)
    csf, gm, wm = sample(template.csf), sample(template.gm), sample(template.wm)
    # Cortical thickness: move the grey/white boundary by shifting the white-matter logit.
    tissue = gm + wm
    eps = 1e-4
    wm_clip = np.clip(wm, eps, 1 - eps)
    shifted = 1.0 / (1.0 + np.exp(-(np.log(wm_clip / (1 - wm_clip)) + anatomy.cortex_shift)))
    wm_new = np.minimum(np.where(wm > eps, shifted, wm), tissue)
    gm = tissue - wm_new
    wm = wm_new
    lesion = np.zeros_like(wm) if lesions is None else lesions.sample(x)
    lesion = np.minimum(lesion, wm)
    wm = wm - lesion
    background = np.clip(1.0 - csf - gm - wm - lesion, 0.0, 1.0)
    return np.stack([background, csf, gm, wm, lesion]).astype(np.float32)
