"""The built-in demo data: a multi-site, multi-contrast, labelled brain MRI phantom written as NIfTI + datalists.

``generate_phantom`` draws subjects (``anatomy``), renders each at its site (``render``) and writes, per site, a
folder with ``images/``, ``labels/`` and an MSD-style ``datalist.json`` (``training``, ``validation``, ``test`` and
``unlabeled`` lists, paths relative to the datalist), plus a ``summary.json`` and a ``montage.png`` at the top. The
same seed gives identical arrays. Bundles read the result exactly like user data.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from monai_hybrid.data.anatomy import CLASS_NAMES, Grid, sample_anatomy, site_grid, tissue_fractions
from monai_hybrid.data.head import head_fractions, head_grid, sample_head
from monai_hybrid.data.lesions import LESION_MODEL_VERSION, LesionMap, LesionModel, lesion_map, sample_lesion_model
from monai_hybrid.data.mr_physics import HEAD_TISSUE_PARAMETERS, TissueParameters, jitter_tissues
from monai_hybrid.data.render import labels_from_fractions, render_scan
from monai_hybrid.data.sites import DEFAULT_SITES, ListSizes, Site, raw_twin
from monai_hybrid.data.template import TemplateMaps, load_template

__all__ = [
    "PhantomConfig",
    "generate_phantom",
    "ensure_phantom",
    "LIST_KEYS",
    "SUMMARY_FILE",
    "DATALIST_FILE",
    "MONTAGE_FILE",
    "render_subject",
    "SubjectScan",
    "subject_scan",
    "subject_lesions",
    "summary_text",
]

logger = logging.getLogger(__name__)

LIST_KEYS: tuple[str, ...] = ("training", "validation", "test", "unlabeled")
SUMMARY_FILE = "summary.json"
DATALIST_FILE = "datalist.json"
MONTAGE_FILE = "montage.png"
_FORMAT_VERSION = 1
_MONTAGE_SUBJECT = 1_000_000
# A voxel of size s averages the anatomy over s: a Gaussian of FWHM s, sigma = s / 2.355.
_PARTIAL_VOLUME_SIGMA = 0.4247


@dataclass(frozen=True)
class PhantomConfig:
    """Everything that determines the phantom's arrays.

    Attributes:
        seed: random seed; the same seed gives identical files.
        resolution: base voxel size in mm (2 by default, 3 for fast CPU runs); sites scale it by their factors.
        lesions: add white-matter hyperintensities (``lesions.LESION_CATEGORIES``: none, punctate, periventricular
            or confluent, 0.5 to 50 ml) to the subjects of the target sites, as class 4; source sites stay
            tissue-only (they still list the class).
        sites: the sites to render.
        raw_sites: append a raw-looking twin (``<name>_raw``: head, air, scanner units, larger field of view) of
            every skull-stripped target site at the end of ``sites``, so that the other sites keep their indices,
            hence their random streams and arrays.
    """

    seed: int = 0
    resolution: float = 2.0
    lesions: bool = False
    sites: tuple[Site, ...] = field(default=DEFAULT_SITES)
    raw_sites: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.raw_sites, bool):
            raise ValueError(f"PhantomConfig: 'raw_sites' must be True or False, got {self.raw_sites!r}.")
        if self.raw_sites:
            object.__setattr__(self, "sites", _with_raw_twins(tuple(self.sites)))
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"PhantomConfig: 'seed' must be a non-negative integer, got {self.seed!r}.")
        if not 0.5 <= float(self.resolution) <= 6.0:
            raise ValueError(f"PhantomConfig: 'resolution' must be in [0.5, 6] mm, got {self.resolution!r}.")
        if not self.sites:
            raise ValueError("PhantomConfig: 'sites' must hold at least one site.")
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError(f"PhantomConfig: site names must be unique, got {names}.")

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES if self.lesions else CLASS_NAMES[:4]

    def with_sizes(self, source: ListSizes | None = None, target: ListSizes | None = None) -> PhantomConfig:
        """A copy whose source and/or target sites have other list sizes (e.g. tiny test phantoms)."""
        sites = tuple(replace(s, sizes=(source if s.role == "source" else target) or s.sizes) for s in self.sites)
        return replace(self, sites=sites)

    def to_json(self) -> dict:
        """The settings as recorded in ``summary.json`` (plain JSON types, so that a phantom read back compares equal
        and is reused); ``raw_sites`` only when on, the lesion model's version only with lesions (default summaries
        unchanged)."""
        out = {
            "format_version": _FORMAT_VERSION,
            "seed": self.seed,
            "resolution": float(self.resolution),
            "lesions": self.lesions,
            "sites": [s.describe(self.resolution) for s in self.sites],
        }
        if self.raw_sites:
            out["raw_sites"] = True
        if self.lesions:
            out["lesion_model"] = LESION_MODEL_VERSION
        return json.loads(json.dumps(out))  # tuples become lists, as in the file


def _with_raw_twins(sites: tuple[Site, ...]) -> tuple[Site, ...]:
    """``sites`` followed by the raw twin of each skull-stripped target site not twinned yet (idempotent)."""
    names = {s.name for s in sites}
    twins = tuple(raw_twin(s) for s in sites if s.role == "target" and not s.raw)
    return sites + tuple(t for t in twins if t.name not in names)


def _rngs(seed: int, site_index: int, subject: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The subject's anatomy generator and the scan's generator, independent of worker scheduling.

    Subjects of different sites are different people; the montage subject is the same person at every site.
    """
    owner = -1 if subject == _MONTAGE_SUBJECT else site_index
    anatomy_seq = np.random.SeedSequence([seed, owner + 1, subject])
    scan_seq = np.random.SeedSequence([seed, site_index, subject, 1])
    return np.random.default_rng(anatomy_seq), np.random.default_rng(scan_seq)


def _head_rng(seed: int, site_index: int, subject: int) -> np.random.Generator:
    """The subject's head generator (raw-looking sites only; the montage subject has one head at every site)."""
    owner = -1 if subject == _MONTAGE_SUBJECT else site_index
    return np.random.default_rng(np.random.SeedSequence([seed, owner + 1, subject, 2]))


def _lesion_rng(seed: int, site_index: int, subject: int) -> np.random.Generator:
    """The subject's lesion generator, apart from its anatomy's, so that switching lesions on changes nothing else
    (the montage subject has the same lesions at every target site)."""
    owner = -1 if subject == _MONTAGE_SUBJECT else site_index
    return np.random.default_rng(np.random.SeedSequence([seed, owner + 1, subject, 3]))


def _partial_volume_sigma(grid: Grid) -> tuple[float, ...]:
    return tuple(np.round(grid.spacing * _PARTIAL_VOLUME_SIGMA, 4))


def _site_template(template: TemplateMaps, grid: Grid) -> TemplateMaps:
    return template.smoothed(_partial_volume_sigma(grid))


def subject_lesions(config: PhantomConfig, site_index: int, subject: int) -> LesionModel | None:
    """The lesions of one subject at one site: ``None`` without ``config.lesions`` or at a source site.

    Args:
        config: the phantom.
        site_index: index of the site in ``config.sites``.
        subject: the subject's index at that site.

    Returns:
        The lesion draw (``load_ml == 0`` for a subject of the "none" category), or ``None``.
    """
    if not config.lesions or config.sites[site_index].role != "target":
        return None
    return sample_lesion_model(_lesion_rng(config.seed, site_index, subject), load_template())


def _site_lesions(model: LesionModel | None, template: TemplateMaps, grid: Grid) -> LesionMap | None:
    """The lesion map blurred to the grid's partial volume; ``None`` when the subject has no lesion."""
    if model is None or model.load_ml == 0:
        return None
    return lesion_map(model, template).smoothed(_partial_volume_sigma(grid))


@dataclass(frozen=True)
class SubjectScan:
    """What a scan of a subject is rendered from.

    Attributes:
        grid: the scan's voxel grid.
        fractions: (len(CLASS_NAMES), X, Y, Z) brain-class and background fractions (the labels come from these).
        tissues: the subject's brain tissue parameters.
        head: raw-looking sites: (len(HEAD_TISSUES), X, Y, Z) extra-cerebral fractions; ``None`` otherwise.
        head_tissues: raw-looking sites: the subject's extra-cerebral tissue parameters; ``None`` otherwise.
    """

    grid: Grid
    fractions: np.ndarray
    tissues: dict[str, TissueParameters]
    head: np.ndarray | None = None
    head_tissues: dict[str, TissueParameters] | None = None


def subject_scan(config: PhantomConfig, site_index: int, subject: int) -> tuple[SubjectScan, np.random.Generator]:
    """The anatomy of one subject on one site's grid, and the scan's random generator.

    Args:
        config: the phantom.
        site_index: index of the site in ``config.sites``.
        subject: the subject's index at that site.

    Returns:
        ``(scan, scan_rng)``.
    """
    site = config.sites[site_index]
    anatomy_rng, scan_rng = _rngs(config.seed, site_index, subject)
    template = load_template()
    anatomy = sample_anatomy(anatomy_rng)
    tissues = jitter_tissues(anatomy_rng)
    lesions = subject_lesions(config, site_index, subject)
    spacing = np.asarray(site.spacing_factor) * config.resolution
    if site.head is None:
        grid = site_grid(spacing, site.orientation)
    else:
        grid = head_grid(spacing, site.orientation, site.head)
    fractions = tissue_fractions(anatomy, grid, _site_template(template, grid), _site_lesions(lesions, template, grid))
    if site.head is None:
        return SubjectScan(grid, fractions, tissues), scan_rng
    head_rng = _head_rng(config.seed, site_index, subject)
    head = head_fractions(1.0 - fractions[0], grid, sample_head(head_rng), site.head)
    head_tissues = jitter_tissues(head_rng, tissues=HEAD_TISSUE_PARAMETERS)
    return SubjectScan(grid, fractions, tissues, head, head_tissues), scan_rng


def render_subject(config: PhantomConfig, site_index: int, subject: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one subject at one site.

    Args:
        config: the phantom.
        site_index: index of the site in ``config.sites``.
        subject: the subject's index at that site.

    Returns:
        ``(image, label, affine)``: image (X, Y, Z) int16, label (X, Y, Z) uint8, affine (4, 4).
    """
    site = config.sites[site_index]
    scan, scan_rng = subject_scan(config, site_index, subject)
    image = render_scan(
        scan.fractions, scan.tissues, site, scan.grid, config.resolution, scan_rng, scan.head, scan.head_tissues
    )
    return image, labels_from_fractions(scan.fractions), scan.grid.affine


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))


def _case_name(site: Site, subject: int) -> str:
    return f"{site.name}_sub-{subject:03d}"


def _render_task(config: PhantomConfig, site_index: int, subject: int, write_label: bool, root: str) -> dict:
    site = config.sites[site_index]
    image, label, affine = render_subject(config, site_index, subject)
    name = _case_name(site, subject)
    site_dir = Path(root) / site.name
    entry = {"image": f"images/{name}_{site.contrast}.nii.gz"}
    _write_nifti(image, affine, site_dir / entry["image"])
    if write_label:
        entry["label"] = f"labels/{name}_dseg.nii.gz"
        _write_nifti(label, affine, site_dir / entry["label"])
    counts = np.bincount(label.ravel(), minlength=len(CLASS_NAMES))
    return {
        "site": site_index,
        "subject": subject,
        "entry": entry,
        "shape": list(image.shape),
        "counts": counts.tolist() if write_label else None,
    }


def _assignments(sizes: ListSizes) -> list[str]:
    keys: list[str] = []
    for key in LIST_KEYS:
        keys += [key] * getattr(sizes, key)
    return keys


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def generate_phantom(
    out_dir: str | os.PathLike,
    config: PhantomConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Generate the phantom into ``out_dir``.

    The files are written to a temporary folder beside ``out_dir`` that is renamed when complete, so an interrupted
    run never leaves a half-written dataset behind.

    Args:
        out_dir: destination folder; must not exist unless ``overwrite`` (and then must hold a phantom).
        config: what to generate (default: ``PhantomConfig()``).
        workers: processes to render with (default: all usable CPU cores).
        progress: show a progress bar.
        overwrite: replace an existing phantom in ``out_dir``.

    Returns:
        The summary that is also written to ``out_dir/summary.json``.
    """
    from tqdm.auto import tqdm

    config = config or PhantomConfig()
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not (out_dir / SUMMARY_FILE).is_file():
            raise FileExistsError(
                f"'{out_dir}' exists and does not hold a phantom (no {SUMMARY_FILE}); choose another output folder."
            )
        if not overwrite:
            raise FileExistsError(
                f"'{out_dir}' already holds a phantom; pass overwrite=True (--overwrite) to replace it."
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        tasks = []
        for site_index, site in enumerate(config.sites):
            for sub in ("images", "labels"):
                (tmp / site.name / sub).mkdir(parents=True, exist_ok=True)
            for subject, key in enumerate(_assignments(site.sizes)):
                tasks.append((site_index, subject, key != "unlabeled"))
        workers = min(workers or _default_workers(), len(tasks))
        results = []
        bar = tqdm(total=len(tasks), desc="phantom", unit="scan", disable=not progress)
        if workers <= 1:
            for task in tasks:
                results.append(_render_task(config, *task, str(tmp)))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_render_task, config, *task, str(tmp)) for task in tasks]
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update()
        bar.close()
        summary = _write_datalists_and_summary(tmp, config, results)
        _write_montage(tmp / MONTAGE_FILE, config)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Phantom written to %s", out_dir)
    return summary


def _write_datalists_and_summary(root: Path, config: PhantomConfig, results: list[dict]) -> dict:
    n_classes = len(config.class_names)
    sites = []
    for site_index, site in enumerate(config.sites):
        mine = sorted((r for r in results if r["site"] == site_index), key=lambda r: r["subject"])
        keys = _assignments(site.sizes)
        datalist: dict = {
            "name": f"monai-hybrid phantom, {site.name}",
            "description": f"{site.contrast} brain MRI phantom from MNI152 2009a anatomy ({site.role} site)",
            "modality": {"0": site.contrast},
            "labels": {str(i): name for i, name in enumerate(config.class_names)},
            "numTraining": site.sizes.training,
        }
        for key in LIST_KEYS:
            datalist[key] = [r["entry"] for r, k in zip(mine, keys, strict=False) if k == key]
        (root / site.name / DATALIST_FILE).write_text(json.dumps(datalist, indent=2))
        counts = np.sum([r["counts"] for r in mine if r["counts"] is not None], axis=0)
        info = site.describe(config.resolution)
        info.update(
            shape=mine[0]["shape"],
            datalist=f"{site.name}/{DATALIST_FILE}",
            voxel_counts={name: int(counts[i]) for i, name in enumerate(config.class_names)},
        )
        sites.append(info)
        if n_classes == 4 and counts[4] != 0:  # pragma: no cover - lesions only exist when switched on
            raise RuntimeError("lesion voxels found in a phantom without lesions")
    summary = {
        "generator": "monai-hybrid phantom",
        "config": config.to_json(),
        "class_names": list(config.class_names),
        "sites": sites,
        "montage": MONTAGE_FILE,
    }
    (root / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def _write_montage(path: Path, config: PhantomConfig) -> None:
    from monai_hybrid.data.montage import save_montage

    scans = []
    for site_index, site in enumerate(config.sites):
        image, label, affine = render_subject(config, site_index, _MONTAGE_SUBJECT)
        scans.append((f"{site.name} ({site.contrast})", image, label, affine))
    save_montage(scans, path, config.class_names)


def ensure_phantom(
    out_dir: str | os.PathLike,
    seed: int = 0,
    resolution: float = 2.0,
    lesions: bool = False,
    workers: int | None = None,
    progress: bool = True,
    raw_sites: bool = False,
    regenerate: bool = True,
) -> Path:
    """Generate the default phantom into ``out_dir`` unless the same phantom is already there.

    Bundles call this on first use. A folder that holds something else is an error. ``raw_sites`` adds the
    raw-looking twins of the target sites (:attr:`PhantomConfig.raw_sites`).

    Args:
        regenerate: what to do with a phantom made with other settings: generate this one over it (``True``: the
            benchmark, whose data must be its preset's), or use it as it is, with a warning that names both settings
            (``False``: the bundles, so that a phantom the user made, with ``--lesions`` say, is never overwritten).
            A phantom of an older format or lesion model (which the user never chose) is regenerated either way, with
            ``False`` at the settings it was made with (its seed, resolution, lesions and raw sites).

    Returns:
        ``out_dir`` as a path.
    """
    out_dir = Path(out_dir)
    config = PhantomConfig(seed=int(seed), resolution=float(resolution), lesions=bool(lesions), raw_sites=raw_sites)
    summary_path = out_dir / SUMMARY_FILE
    if summary_path.is_file():
        try:
            found = json.loads(summary_path.read_text()).get("config")
        except (OSError, json.JSONDecodeError):
            found = None
        if found == config.to_json():
            logger.info("Using the phantom already in %s", out_dir)
            return out_dir
        if regenerate or not isinstance(found, dict):
            logger.warning("The phantom in %s was made with other settings; regenerating it.", out_dir)
        elif _made_by_older_code(found):
            # the user's own choices, remade by this code: the classes and subjects they chose stay what they were
            chosen = {
                "seed": int(found.get("seed", seed)),
                "resolution": float(found.get("resolution", resolution)),
                "lesions": bool(found.get("lesions", False)),
                "raw_sites": bool(found.get("raw_sites", False)),
            }
            config = PhantomConfig(**chosen)
            logger.warning(
                "The phantom in %s was written by an older version of monai-hybrid (format or lesion model); "
                "regenerating it with the settings it was made with (%s).",
                out_dir,
                chosen,
            )
        else:
            wanted = config.to_json()
            differs = sorted(k for k in {**found, **wanted} if found.get(k) != wanted.get(k))
            logger.warning(
                "Using the phantom in %s as it is: it was made with %s where this run would make %s; delete the "
                "folder (or point dataset_dir elsewhere) for this run's own phantom.",
                out_dir,
                {k: found.get(k) for k in differs},
                {k: wanted.get(k) for k in differs},
            )
            return out_dir
    generate_phantom(out_dir, config, workers=workers, progress=progress, overwrite=summary_path.is_file())
    return out_dir


def _made_by_older_code(found: dict) -> bool:
    """Whether a phantom's recorded settings (``summary.json``'s ``config``) name an older phantom format or, with
    lesions, an older lesion model: differences the user did not choose, unlike seed, resolution or ``--lesions``."""
    if not isinstance(found.get("format_version"), int) or found["format_version"] < _FORMAT_VERSION:
        return True
    lesion_model = found.get("lesion_model")
    return bool(found.get("lesions")) and (not isinstance(lesion_model, int) or lesion_model < LESION_MODEL_VERSION)


def summary_text(summary: dict) -> str:
    """A short human-readable summary of a phantom."""
    lines = [f"classes: {', '.join(summary['class_names'])}"]
    for s in summary["sites"]:
        sizes = ", ".join(f"{k} {v}" for k, v in s["subjects"].items())
        lines.append(
            f"{s['name']:<14} {s['role']:<6} {s['contrast']:<5} spacing {s['spacing_mm']} mm, shape {s['shape']}, "
            f"noise {s['noise_fraction']:.0%}, {s['orientation']}; {sizes}"
        )
    return "\n".join(lines)
