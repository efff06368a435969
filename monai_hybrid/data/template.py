"""The anatomy behind the phantom: the MNI152 ICBM 2009a template that ships inside nilearn's wheel.

nilearn packages the 1 mm symmetric ICBM 2009a T1 template (skull-stripped) and its grey- and white-matter
probability maps (Fonov et al. 2011, NeuroImage 54:313; Fonov et al. 2009, NeuroImage 47:S102). Nothing is
downloaded: the three files sit in ``nilearn/datasets/data``. CSF is what is left inside the brain mask once grey
and white matter are taken out.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["TemplateMaps", "load_template", "VENTRICLE_CENTRE_MM"]

logger = logging.getLogger(__name__)

#: CSF-weighted centroid of the lateral ventricles in MNI world coordinates (mm), measured on the template
#: (CSF probability > 0.5 within |x| < 25, -45 < y < 25, 0 < z < 35).
VENTRICLE_CENTRE_MM = np.array([0.0, -13.3, 15.0])


@dataclass(frozen=True, eq=False)
class TemplateMaps:
    """Tissue probability maps of the template on its 1 mm grid.

    Attributes:
        csf: CSF probability, shape (X, Y, Z), float32 in [0, 1].
        gm: grey-matter probability, shape (X, Y, Z).
        wm: white-matter probability, shape (X, Y, Z).
        affine: (4, 4) voxel-to-world (RAS, mm) matrix of the template grid.
    """

    csf: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.gm.shape)  # type: ignore[return-value]

    def smoothed(self, sigma_mm: np.ndarray | tuple[float, float, float]) -> TemplateMaps:
        """The maps blurred by a Gaussian of ``sigma_mm`` (partial volume of a coarser voxel)."""
        return _smoothed(self, tuple(float(s) for s in np.broadcast_to(sigma_mm, (3,))))


@functools.lru_cache(maxsize=1)
def load_template() -> TemplateMaps:
    """Load the MNI152 2009a tissue maps from nilearn's wheel (cached per process).

    Returns:
        The template maps; probabilities of CSF, grey and white matter sum to the (slightly smoothed) brain mask.

    Raises:
        RuntimeError: if nilearn or its packaged template files are missing.
    """
    try:
        import nibabel as nib
        from nilearn import datasets
    except ImportError as err:  # pragma: no cover - nilearn is a hard dependency
        raise RuntimeError(
            "The demo phantom needs the MNI152 templates inside the 'nilearn' wheel; install it with "
            "`pip install nilearn`."
        ) from err
    paths = {"t1": datasets.MNI152_FILE_PATH, "gm": datasets.GM_MNI152_FILE_PATH, "wm": datasets.WM_MNI152_FILE_PATH}
    arrays = {}
    affine = None
    for key, path in paths.items():
        try:
            img = nib.load(str(path))
        except FileNotFoundError as err:
            raise RuntimeError(
                f"nilearn's packaged template '{path}' is missing; reinstall nilearn (`pip install --force-reinstall "
                "nilearn`)."
            ) from err
        arrays[key] = np.asarray(img.dataobj, dtype=np.float32)
        affine = img.affine if affine is None else affine
    brain = ndimage.gaussian_filter((arrays["t1"] > 0).astype(np.float32), sigma=0.6)
    gm = arrays["gm"] / 255.0
    wm = arrays["wm"] / 255.0
    # Keep the three classes inside the brain and summing to it.
    tissue = gm + wm
    over = np.maximum(tissue / np.maximum(brain, 1e-6), 1.0)
    gm, wm = gm / over, wm / over
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    logger.debug("Loaded MNI152 2009a template maps of shape %s", gm.shape)
    return TemplateMaps(
        csf=csf.astype(np.float32),
        gm=gm.astype(np.float32),
        wm=wm.astype(np.float32),
        affine=np.asarray(affine, dtype=np.float64),
    )


@functools.lru_cache(maxsize=8)
def _smoothed(maps: TemplateMaps, sigma_mm: tuple[float, float, float]) -> TemplateMaps:
    voxel = np.abs(np.diag(maps.affine)[:3])
    sigma = np.asarray(sigma_mm) / voxel
    if not np.any(sigma > 0):
        return maps
    blur = functools.partial(ndimage.gaussian_filter, sigma=sigma, mode="constant", truncate=3.0)
    return TemplateMaps(csf=blur(maps.csf), gm=blur(maps.gm), wm=blur(maps.wm), affine=maps.affine)
