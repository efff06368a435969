"""A site's scanner: tissue fractions in, a magnitude MR image out.

The steps follow the physics of an acquisition:

1. each voxel's signal is the partial-volume mix of its tissues' signals (``mr_physics``);
2. the point-spread function blurs it (a Gaussian of the site's FWHM);
3. the receive coil multiplies it by a smooth bias field;
4. complex Gaussian noise makes the magnitude image Rician (Gudbjartsson & Patz 1995, MRM 34:910);
5. the reconstruction scales it to the site's integer range: the mean brain signal becomes the site's ``scale`` for a
   skull-stripped site; a raw-looking site (``site.head``) keeps scanner units, the signal (in units of water's proton
   density) times a receiver gain drawn log-uniformly per scan, and has skull, fat and scalp around the brain.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from monai_hybrid.data.anatomy import CLASS_NAMES, Grid, smooth_field
from monai_hybrid.data.head import HEAD_TISSUES
from monai_hybrid.data.mr_physics import TissueParameters
from monai_hybrid.data.sites import Site

__all__ = ["render_scan", "labels_from_fractions", "receiver_gain"]

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def labels_from_fractions(fractions: np.ndarray) -> np.ndarray:
    """The label map: the class with the largest partial-volume fraction in each voxel, shape (X, Y, Z), uint8."""
    return np.argmax(fractions, axis=0).astype(np.uint8)


def render_scan(
    fractions: np.ndarray,
    tissues: dict[str, TissueParameters],
    site: Site,
    grid: Grid,
    resolution: float,
    rng: np.random.Generator,
    head: np.ndarray | None = None,
    head_tissues: dict[str, TissueParameters] | None = None,
) -> np.ndarray:
    """Render one scan of a subject at a site.

    Args:
        fractions: (len(CLASS_NAMES), X, Y, Z) partial-volume fractions on ``grid``.
        tissues: the subject's tissue parameters, keyed like ``mr_physics.TISSUES``.
        site: the scanner and protocol.
        grid: the scan's voxel grid.
        resolution: the phantom's base resolution in mm (the site's FWHM is given in its units).
        rng: the scan's random generator (bias field and noise).
        head: raw-looking sites only: (len(HEAD_TISSUES), X, Y, Z) fractions of the extra-cerebral tissues.
        head_tissues: raw-looking sites only: their parameters, keyed like ``mr_physics.HEAD_TISSUE_PARAMETERS``.

    Returns:
        The stored image, (X, Y, Z) int16.

    Raises:
        ValueError: if ``head`` and ``head_tissues`` are not given for a raw-looking site, or given for another.
    """
    if site.raw != (head is not None) or site.raw != (head_tissues is not None):
        raise ValueError(
            f"render_scan: 'head' and 'head_tissues' must be given exactly for raw-looking sites; site {site.name!r} "
            f"is {'raw' if site.raw else 'skull-stripped'}."
        )
    signal = np.zeros(fractions.shape[1:], dtype=np.float32)
    for index, name in enumerate(CLASS_NAMES[1:], start=1):
        signal += fractions[index] * np.float32(site.sequence.signal(tissues[name]))
    if head is not None:
        for index, name in enumerate(HEAD_TISSUES):
            signal += head[index] * np.float32(site.sequence.signal(head_tissues[name]))
    sigma_vox = np.asarray(site.blur_fwhm) * resolution * _FWHM_TO_SIGMA / grid.spacing
    signal = ndimage.gaussian_filter(signal, sigma=sigma_vox, mode="constant")
    brain = fractions[0] < 0.5
    reference = float(signal[brain].mean())
    if site.bias > 0:
        control = rng.normal(0.0, site.bias, size=(1, 3, 3, 3))
        signal *= np.exp(smooth_field(control, grid.world_coordinates())[0]).astype(np.float32)
    sigma = site.noise * reference
    real = signal + rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    magnitude = np.sqrt(real**2 + imag**2)
    if site.head is None:
        stored = magnitude / reference * site.scale
    else:
        stored = magnitude * np.float32(receiver_gain(rng, site.head.gain))
    return np.clip(np.rint(stored), 0, np.iinfo(np.int16).max).astype(np.int16)


def receiver_gain(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A receiver gain drawn log-uniformly in ``bounds`` (scanner units per unit of signal)."""
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))
