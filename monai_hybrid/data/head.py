"""The head around the brain, for raw-looking scans: skull, diploe, subcutaneous fat and scalp as smooth shells.

Clean phantom sites are skull-stripped: every voxel outside the brain is zero. Raw clinical scans are not: the brain
sits inside a skull (two tables of cortical bone, nearly without signal, with fatty marrow, the diploe, between
them), under a layer of subcutaneous fat and the scalp (skin and muscle), in a field of view with air all around,
whose magnitude is Rayleigh noise. :class:`HeadModel` holds the settings of such a site; :func:`head_fractions`
builds the shells from the distance (mm) to the subject's brain on the scan grid.

From the brain outwards the shells are: inner table, diploe, outer table (together the skull), fat, scalp. Their
thicknesses vary smoothly over the head and from subject to subject (:func:`sample_head`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monai_hybrid.data.anatomy import Grid, site_grid, smooth_field

__all__ = ["HeadModel", "HeadShape", "HEAD_TISSUES", "sample_head", "head_thicknesses", "head_fractions", "head_grid"]

#: The extra-cerebral tissues, in the order of :func:`head_fractions`'s first axis (keys of
#: ``mr_physics.HEAD_TISSUE_PARAMETERS``).
HEAD_TISSUES: tuple[str, ...] = ("cortical_bone", "marrow", "fat", "scalp")

# Random thickness fields: cubic interpolation of a coarse control grid spanning the brain's box (about 50 mm apart).
_HEAD_CONTROL_POINTS = (4, 4, 4)


def _check_range(name: str, value: tuple[float, float], low: float = 0.0) -> None:
    if len(value) != 2 or not low < value[0] <= value[1]:
        raise ValueError(f"HeadModel: '{name}' must be (low, high) with {low} < low <= high, got {value!r}.")


@dataclass(frozen=True)
class HeadModel:
    """How a raw-looking site's head and field of view look.

    Attributes:
        skull_mm: range of the skull's thickness (both tables and the diploe), mm.
        diploe_fraction: range of the share of the skull's thickness that is diploe (fatty marrow).
        fat_mm: range of the subcutaneous fat's thickness, mm.
        scalp_mm: range of the scalp's thickness (skin and muscle), mm.
        fov_mm: field of view per axis (x, y, z), mm, centred on ``fov_centre_mm``.
        fov_centre_mm: centre of the field of view in MNI world coordinates, mm.
        gain: range of the receiver gain, drawn log-uniformly per scan: stored value = signal (PD units) * gain.
    """

    skull_mm: tuple[float, float] = (4.0, 8.0)
    diploe_fraction: tuple[float, float] = (0.25, 0.5)
    fat_mm: tuple[float, float] = (2.0, 6.0)
    scalp_mm: tuple[float, float] = (2.0, 5.0)
    fov_mm: tuple[float, float, float] = (240.0, 256.0, 220.0)
    fov_centre_mm: tuple[float, float, float] = (0.0, -17.0, 5.0)
    gain: tuple[float, float] = (1000.0, 4000.0)

    def __post_init__(self) -> None:
        for name in ("skull_mm", "fat_mm", "scalp_mm", "gain"):
            _check_range(name, getattr(self, name))
        _check_range("diploe_fraction", self.diploe_fraction)
        if self.diploe_fraction[1] >= 1.0:
            raise ValueError(f"HeadModel: 'diploe_fraction' must stay below 1, got {self.diploe_fraction!r}.")
        if len(self.fov_mm) != 3 or min(self.fov_mm) <= 0:
            raise ValueError(f"HeadModel: 'fov_mm' must be 3 positive lengths in mm, got {self.fov_mm!r}.")
        if len(self.fov_centre_mm) != 3:
            raise ValueError(f"HeadModel: 'fov_centre_mm' must be 3 coordinates in mm, got {self.fov_centre_mm!r}.")


@dataclass(frozen=True)
class HeadShape:
    """One subject's head: the random control values of its thickness fields.

    Attributes:
        control: (4, *control grid) values in [-1, 1] for skull thickness, diploe share, fat and scalp thickness.
    """

    control: np.ndarray


def sample_head(rng: np.random.Generator) -> HeadShape:
    """Draw a subject's head: smooth random fields, one per thickness, of values in [-1, 1].

    Args:
        rng: the subject's head generator.
    """
    return HeadShape(control=np.tanh(rng.normal(0.0, 1.0, size=(4, *_HEAD_CONTROL_POINTS))))


def head_thicknesses(shape: HeadShape, model: HeadModel, world: np.ndarray) -> np.ndarray:
    """The thickness of every shell at ``world`` points.

    Args:
        shape: the subject's head.
        model: ranges of the thicknesses.
        world: (3, ...) world coordinates, mm.

    Returns:
        (5, ...) float32 thicknesses in mm of inner table, diploe, outer table, fat and scalp.
    """
    field = np.clip(smooth_field(shape.control, world), -1.0, 1.0)

    def between(value: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        return bounds[0] + (bounds[1] - bounds[0]) * (value + 1.0) / 2.0

    skull = between(field[0], model.skull_mm)
    diploe = skull * between(field[1], model.diploe_fraction)
    table = (skull - diploe) / 2.0
    return np.stack([table, diploe, table, between(field[2], model.fat_mm), between(field[3], model.scalp_mm)]).astype(
        np.float32
    )


def head_fractions(brain: np.ndarray, grid: Grid, shape: HeadShape, model: HeadModel) -> np.ndarray:
    """Partial-volume fractions of the extra-cerebral tissues around a brain.

    Shells follow the distance (mm) from the brain mask (``brain >= 0.5``); a voxel's share of a shell is the part of
    a one-voxel-thick slab around its distance that lies inside the shell. The head only fills what the brain leaves
    over (``1 - brain``), so brain and head fractions sum to at most 1; the rest is air.

    Args:
        brain: (X, Y, Z) brain fraction on ``grid`` (sum of the brain classes' fractions).
        grid: the scan's voxel grid.
        shape: the subject's head.
        model: the shells' thickness ranges.

    Returns:
        (len(HEAD_TISSUES), X, Y, Z) float32 fractions of cortical bone, marrow, fat and scalp.
    """
    inside = brain >= 0.5
    voxel = float(np.prod(grid.spacing) ** (1.0 / 3.0))
    distance = ndimage.distance_transform_edt(~inside, sampling=grid.spacing) - voxel / 2.0
    outer = np.cumsum(head_thicknesses(shape, model, grid.world_coordinates()), axis=0)
    covered = np.clip((outer - distance[None]) / voxel + 0.5, 0.0, 1.0)
    shells = np.diff(covered, axis=0, prepend=0.0)
    shells *= np.clip(1.0 - brain, 0.0, 1.0)[None]
    inner_table, diploe, outer_table, fat, scalp = shells
    return np.stack([inner_table + outer_table, diploe, fat, scalp]).astype(np.float32)


def head_grid(spacing: np.ndarray | tuple[float, float, float], orientation: str, model: HeadModel) -> Grid:
    """The grid of a raw-looking site: the model's field of view, centred on the head, with voxels of ``spacing``.

    Args:
        spacing: voxel size per axis in mm.
        orientation: ``"RAS"`` or ``"LPS"``.
        model: field of view and its centre.
    """
    return site_grid(spacing, orientation, size_mm=model.fov_mm, centre_mm=model.fov_centre_mm)
