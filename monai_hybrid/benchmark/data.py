"""The benchmark's data: the phantom (generated when needed) or the user's datalists, verified before any run, and
the class names."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from monai_hybrid.data.datalist import datalist_class_names
from monai_hybrid.data.phantom import DATALIST_FILE, SUMMARY_FILE, ensure_phantom
from monai_hybrid.data.prepare import prepare_datalist
from monai_hybrid.data.sites import SOURCE_SITE, ListSizes

__all__ = ["DEVELOPMENT_SEED", "FRESH_FOLDER", "LESION_SUFFIX", "BenchmarkData", "is_lesion_site", "prepare_data"]

#: The phantom seed every development run used (``ensure_phantom``'s default): a fresh cohort needs another.
DEVELOPMENT_SEED = 0
#: A target site named ``<phantom site>_lesions`` is that site of the phantom with white-matter lesions (labelled as
#: one more class, ``lesion``): the source site stays tissue-only, so its models grow the mask head when fine-tuned.
LESION_SUFFIX = "_lesions"


def is_lesion_site(site: str) -> bool:
    """Whether ``site`` names a phantom target site with lesions (``<site>_lesions``)."""
    return site.endswith(LESION_SUFFIX)


def _folder(name: str, lesions: bool) -> str:
    return f"{name}{LESION_SUFFIX}" if lesions else name


@dataclass(frozen=True)
class BenchmarkData:
    """The two datalists of a benchmark and the classes they label.

    Attributes:
        source: the labelled source datalist (``training``, ``validation``).
        targets: target site -> its datalist (``training``, ``validation``, ``test``, and ``unlabeled`` when used);
            a user's target datalist is the site ``target``.
        class_names: background first; every model of the benchmark segments these.
        fresh: target site -> the datalist of its fresh test cohort (a phantom generated with another seed).
        fresh_seed: the seed of the fresh cohort's phantom (``None``: none).
        site_classes: target site -> its classes, for the sites that label more classes than the source (the lesion
            sites: ``class_names`` then ``lesion``); the other sites label ``class_names``.
    """

    source: str
    targets: dict[str, str]
    class_names: tuple[str, ...]
    fresh: dict[str, str] = field(default_factory=dict)
    fresh_seed: int | None = None
    site_classes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _class_names(source: str, target: str, given: Sequence[str] | None) -> tuple[str, ...]:
    if given:
        return tuple(given)
    from_source, from_target = datalist_class_names(source), datalist_class_names(target)
    if from_source and from_target and from_source != from_target:
        raise ValueError(
            f"The datalists label different classes: '{source}' {list(from_source)}, '{target}' "
            f"{list(from_target)}; make their 'labels' maps agree, or pass --class-names."
        )
    names = from_target or from_source
    if names is None:
        raise ValueError(
            f"Neither '{source}' nor '{target}' has a 'labels' map (label value -> class name); add one "
            '({"0": "background", "1": ...}) or pass --class-names.'
        )
    return names


#: Folder of a benchmark's fresh test cohort, beside ``phantom`` (``phantom_fresh_lesions``: with lesions).
FRESH_FOLDER = "phantom_fresh"


def _fresh_cohort(
    out_dir: Path, resolution: float, seed: int, sites: Sequence[str], progress: bool, lesions: bool = False
) -> dict[str, str]:
    """The test subjects of every target site (raw-looking twins included; with ``lesions``, every target site with
    lesions and no raw twin) of a phantom generated with ``seed``; returns the datalists of ``sites`` (phantom site
    names).

    Every site keeps its index in the phantom, since its subjects' random streams depend on it, and the cohort
    holds every target site whichever ``sites`` this run scores, so that runs of other grid parts are scored on the
    same subjects. A cohort made with other settings is refused, never overwritten: runs already scored on it would
    be paired with runs scored on another one.
    """
    from monai_hybrid.data.phantom import PhantomConfig, generate_phantom

    folder = out_dir / _folder(FRESH_FOLDER, lesions)
    base = PhantomConfig(seed=seed, resolution=resolution, raw_sites=not lesions, lesions=lesions)
    config = replace(
        base,
        sites=tuple(
            replace(s, sizes=ListSizes(training=1, validation=0, test=s.sizes.test if s.role == "target" else 0))
            for s in base.sites
        ),
    )
    summary_path = folder / SUMMARY_FILE
    if not summary_path.is_file():
        generate_phantom(folder, config, progress=progress)
    elif json.loads(summary_path.read_text()).get("config") != config.to_json():
        raise ValueError(
            f"'{folder}' holds a fresh test cohort made with other settings (another seed, resolution or version); "
            "runs already scored on it would be paired with runs scored on another cohort. Use a new --out folder, "
            f"or remove '{folder}' together with every run scored on it."
        )
    missing = [site for site in sites if not (folder / site / DATALIST_FILE).is_file()]
    if missing:
        raise ValueError(f"The fresh test cohort in '{folder}' has no site {missing}; it holds the phantom's sites.")
    return {site: str(folder / site / DATALIST_FILE) for site in sites}


def prepare_data(
    out_dir: str | os.PathLike,
    resolution: float,
    target_sites: Sequence[str],
    source_datalist: str | os.PathLike | None = None,
    target_datalist: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    unlabeled: bool = False,
    progress: bool = True,
    fresh_seed: int | None = None,
) -> BenchmarkData:
    """Generate the phantom if a datalist is not given (and the fresh test cohort if asked), find the class names
    and verify every datalist.

    Args:
        out_dir: the benchmark's folder (the phantom goes to ``out_dir/phantom``, the fresh cohort to
            ``out_dir/phantom_fresh``).
        resolution: the phantom's resolution (mm).
        target_sites: the phantom's target sites (ignored with ``target_datalist``); ``<site>_lesions`` is a clean
            target site with white-matter lesions, labelled as one more class (``out_dir/phantom_lesions``, its fresh
            cohort in ``out_dir/phantom_fresh_lesions``).
        source_datalist: a labelled source datalist instead of the phantom's source site.
        target_datalist: a target datalist instead of the phantom's target sites (the site ``target``).
        class_names: the classes; default: the datalists' ``labels`` maps.
        unlabeled: the targets' ``unlabeled`` lists are needed (semi-supervised rows).
        progress: progress bar while generating the phantom.
        fresh_seed: phantom seed of a fresh test cohort of every target site (``None``: none; ignored with
            ``target_datalist``). It must differ from the development phantom's seed (0).

    Raises:
        ValueError: a target site is not a target site of the phantom; the class names cannot be found or disagree;
            ``fresh_seed`` is the development phantom's seed.
        DatalistError: a datalist or one of its files is wrong (from ``prepare_datalist``, naming the fix).
    """
    if fresh_seed == DEVELOPMENT_SEED:  # before any compute is spent
        raise ValueError(
            f"fresh_seed {fresh_seed} is the seed of the development phantom; a fresh cohort needs another seed "
            "(--fresh-seed)."
        )
    phantom = Path(out_dir) / "phantom"
    plain = [site for site in target_sites if not is_lesion_site(site)]
    lesion_sites = [site for site in target_sites if is_lesion_site(site)] if target_datalist is None else []
    # a phantom that already holds the raw-looking sites keeps them, whichever sites this run needs
    written = phantom / SUMMARY_FILE
    had_raw = written.is_file() and json.loads(written.read_text()).get("config", {}).get("raw_sites", False)
    raw = had_raw or any(site.endswith("_raw") for site in plain)
    if source_datalist is None or target_datalist is None:
        ensure_phantom(
            phantom,
            seed=DEVELOPMENT_SEED,
            resolution=resolution,
            progress=progress,
            **({"raw_sites": True} if raw else {}),
        )
        summary = json.loads((phantom / SUMMARY_FILE).read_text())
        sites = {s["name"]: s for s in summary["sites"]}
        targets_of = [n for n, s in sites.items() if s["role"] == "target"]
        wrong = [t for t in plain if t not in targets_of]
        wrong += [t for t in lesion_sites if t.removesuffix(LESION_SUFFIX) not in targets_of or "_raw" in t]
        if wrong and target_datalist is None:
            raise ValueError(
                f"{wrong} are not target sites of the phantom (a lesion site is a clean target site with the "
                f"suffix '{LESION_SUFFIX}'); choose among {targets_of}."
            )
    source = str(source_datalist or phantom / SOURCE_SITE.name / DATALIST_FILE)
    if target_datalist is not None:
        targets = {"target": str(target_datalist)}
    else:
        targets = {site: str(phantom / site / DATALIST_FILE) for site in plain}
    if lesion_sites:
        with_lesions = Path(out_dir) / _folder("phantom", True)
        ensure_phantom(with_lesions, seed=DEVELOPMENT_SEED, resolution=resolution, lesions=True, progress=progress)
        for site in lesion_sites:
            targets[site] = str(with_lesions / site.removesuffix(LESION_SUFFIX) / DATALIST_FILE)
        targets = {site: targets[site] for site in target_sites}  # the caller's order
    names = _class_names(source, targets[plain[0]] if plain else source, class_names)
    site_classes = {site: _site_classes(targets[site], names) for site in lesion_sites}
    prepare_datalist(
        source, num_classes=len(names), require=("training", "validation"), lists=("training", "validation")
    )
    lists = ("training", "validation", "test") + (("unlabeled",) if unlabeled else ())
    for site, target in targets.items():
        prepare_datalist(target, num_classes=len(site_classes.get(site, names)), require=lists, lists=lists)
    fresh: dict[str, str] = {}
    if fresh_seed is not None and target_datalist is None:
        if plain:
            fresh = _fresh_cohort(Path(out_dir), resolution, fresh_seed, plain, progress)
        if lesion_sites:
            named = [site.removesuffix(LESION_SUFFIX) for site in lesion_sites]
            cohort = _fresh_cohort(Path(out_dir), resolution, fresh_seed, named, progress, lesions=True)
            fresh.update({site: cohort[name] for site, name in zip(lesion_sites, named, strict=True)})
        for site, datalist in fresh.items():
            num_classes = len(site_classes.get(site, names))
            prepare_datalist(datalist, num_classes=num_classes, require=("test",), lists=("test",))
    return BenchmarkData(source, targets, names, fresh, fresh_seed if fresh else None, site_classes)


def _site_classes(datalist: str, source_names: tuple[str, ...]) -> tuple[str, ...]:
    """The classes of a lesion site's datalist: the source's, then the classes it adds (the mask head grows)."""
    names = datalist_class_names(datalist)
    if names is None or tuple(names[: len(source_names)]) != tuple(source_names) or len(names) <= len(source_names):
        raise ValueError(
            f"'{datalist}' labels {None if names is None else list(names)}: a lesion site must label the source's "
            f"classes {list(source_names)} in the same order, then the classes it adds."
        )
    return tuple(names)
