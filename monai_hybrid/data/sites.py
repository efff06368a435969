"""Imaging sites of the phantom: each one a scanner with its own contrast and acquisition.

A site is what differs between hospitals: the pulse sequence (hence the contrast), the voxel spacing and the blur of
its point-spread function, the noise level, the coil's bias field, the intensity scale of its reconstruction and the
axis orientation its images are stored in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from monai_hybrid.data.head import HeadModel
from monai_hybrid.data.mr_physics import InversionRecovery, Sequence, SpinEcho
from monai_hybrid.options import Orientation, SiteRole, choose

__all__ = [
    "Site",
    "ListSizes",
    "DEFAULT_SITES",
    "SOURCE_SITE",
    "DEFAULT_TARGET_SITE",
    "RAW_SUFFIX",
    "raw_twin",
    "site_by_name",
]

#: Name suffix of a site's raw-looking twin.
RAW_SUFFIX = "_raw"


@dataclass(frozen=True)
class ListSizes:
    """How many subjects of a site go to each datalist list.

    Attributes:
        training: labelled training subjects.
        validation: labelled validation subjects (model selection and tuning).
        test: labelled test subjects (reported results only).
        unlabeled: subjects whose labels are not written (images only).
    """

    training: int
    validation: int
    test: int
    unlabeled: int = 0

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"ListSizes: '{key}' must be a non-negative integer, got {value!r}.")
        if self.training == 0:
            raise ValueError("ListSizes: 'training' must be at least 1.")

    @property
    def total(self) -> int:
        return self.training + self.validation + self.test + self.unlabeled


@dataclass(frozen=True)
class Site:
    """One scanner and protocol.

    Attributes:
        name: folder and key of the site, e.g. ``"site_a_t1w"``.
        role: ``"source"`` (fully labelled) or ``"target"`` (few labels).
        contrast: contrast name, e.g. ``"T1w"``.
        sequence: the pulse sequence with its timings.
        spacing_factor: voxel spacing per axis, in units of the phantom's base resolution.
        blur_fwhm: full width at half maximum of the point-spread function per axis, in units of the base resolution.
        noise: standard deviation of the complex Gaussian noise, as a fraction of the mean brain signal
            (the magnitude image is Rician).
        bias: standard deviation of the log of the smooth multiplicative bias field.
        scale: intensity scale of the reconstruction (stored integers are ``signal / mean_brain * scale``).
        orientation: ``"RAS"`` or ``"LPS"``: the voxel axes' directions as stored on disk.
        sizes: subjects per datalist list.
        head: ``None`` for a skull-stripped scan of the box around the brain, normalised to the mean brain signal
            (``scale``); a :class:`~monai_hybrid.data.head.HeadModel` for a raw-looking scan: skull, fat and scalp
            around the brain, air with Rician noise in a larger field of view, scanner units with a random receiver
            gain (``scale`` is then unused).
    """

    name: str
    role: str
    contrast: str
    sequence: Sequence
    spacing_factor: tuple[float, float, float]
    blur_fwhm: tuple[float, float, float]
    noise: float
    bias: float
    scale: float
    orientation: str = "RAS"
    sizes: ListSizes = field(default_factory=lambda: ListSizes(training=10, validation=4, test=10, unlabeled=10))
    head: HeadModel | None = None

    def __post_init__(self) -> None:
        choose(self.role, SiteRole, f"Site '{self.name}'", "role")
        choose(self.orientation, Orientation, f"Site '{self.name}'", "orientation")
        if len(self.spacing_factor) != 3 or min(self.spacing_factor) <= 0:
            raise ValueError(
                f"Site '{self.name}': 'spacing_factor' must be 3 positive numbers, got {self.spacing_factor}."
            )
        if self.noise < 0 or self.bias < 0 or self.scale <= 0:
            raise ValueError(f"Site '{self.name}': 'noise' and 'bias' must be >= 0 and 'scale' > 0.")
        if self.head is not None and not isinstance(self.head, HeadModel):
            raise ValueError(f"Site '{self.name}': 'head' must be None or a HeadModel, got {type(self.head).__name__}.")

    @property
    def raw(self) -> bool:
        """Whether the site's scans look raw (head, air and scanner units) rather than skull-stripped."""
        return self.head is not None

    def describe(self, resolution: float) -> dict:
        """A JSON-ready description of the site at base ``resolution`` (mm)."""
        seq = asdict(self.sequence)
        seq["type"] = type(self.sequence).__name__
        out = {
            "name": self.name,
            "role": self.role,
            "contrast": self.contrast,
            "sequence": seq,
            "spacing_mm": [round(resolution * f, 4) for f in self.spacing_factor],
            "blur_fwhm_mm": [round(resolution * f, 4) for f in self.blur_fwhm],
            "noise_fraction": self.noise,
            "bias_log_std": self.bias,
            "intensity_scale": self.scale,
            "orientation": self.orientation,
            "subjects": asdict(self.sizes),
        }
        if self.head is not None:  # only then, so that skull-stripped sites describe themselves as before
            out["head"] = asdict(self.head)
        return out


SOURCE_SITE = Site(
    name="site_a_t1w",
    role="source",
    contrast="T1w",
    sequence=SpinEcho(tr=500.0, te=12.0),
    spacing_factor=(1.0, 1.0, 1.0),
    blur_fwhm=(0.5, 0.5, 0.5),
    noise=0.02,
    bias=0.08,
    scale=1000.0,
    sizes=ListSizes(training=30, validation=5, test=5, unlabeled=0),
)

#: The default sites: one fully labelled T1w source and three targets that differ in contrast and acquisition.
DEFAULT_SITES: tuple[Site, ...] = (
    SOURCE_SITE,
    Site(
        name="site_b_t2w",
        role="target",
        contrast="T2w",
        sequence=SpinEcho(tr=4000.0, te=100.0),
        spacing_factor=(1.0, 1.0, 1.25),
        blur_fwhm=(0.6, 0.6, 0.9),
        noise=0.04,
        bias=0.15,
        scale=700.0,
    ),
    Site(
        name="site_c_flair",
        role="target",
        contrast="FLAIR",
        sequence=InversionRecovery(tr=9000.0, te=120.0, ti=2500.0),
        spacing_factor=(0.9, 0.9, 1.5),
        blur_fwhm=(0.7, 0.7, 1.2),
        noise=0.05,
        bias=0.2,
        scale=400.0,
    ),
    Site(
        name="site_d_pd",
        role="target",
        contrast="PD",
        sequence=SpinEcho(tr=6000.0, te=15.0),
        spacing_factor=(1.1, 1.1, 1.1),
        blur_fwhm=(0.6, 0.6, 0.6),
        noise=0.03,
        bias=0.12,
        scale=2000.0,
        orientation="LPS",
    ),
)

DEFAULT_TARGET_SITE = "site_c_flair"


def raw_twin(site: Site, head: HeadModel | None = None) -> Site:
    """The raw-looking copy of ``site``: same contrast, sequence and acquisition, named ``<name>_raw``.

    Args:
        site: a skull-stripped site.
        head: the head and field of view (default: ``HeadModel()``).

    Raises:
        ValueError: if ``site`` is raw already.
    """
    if site.raw:
        raise ValueError(f"raw_twin: 'site' {site.name!r} is raw already.")
    return replace(site, name=site.name + RAW_SUFFIX, head=head or HeadModel())


def site_by_name(name: str, sites: tuple[Site, ...] = DEFAULT_SITES) -> Site:
    """The site called ``name``; raises ``KeyError`` naming the known sites otherwise."""
    for site in sites:
        if site.name == name:
            return site
    raise KeyError(f"Unknown site {name!r}; the phantom's sites are {[s.name for s in sites]}.")
