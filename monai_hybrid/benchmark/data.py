"""The benchmark's data: the phantom (generated when needed) or the user's datalists, verified before any run, and
the class names."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monai_hybrid.data.datalist import datalist_class_names
from monai_hybrid.data.phantom import SUMMARY_FILE, ensure_phantom
from monai_hybrid.data.prepare import prepare_datalist
from monai_hybrid.data.sites import SOURCE_SITE

__all__ = ["BenchmarkData", "prepare_data"]


@dataclass(frozen=True)
class BenchmarkData:
    """The two datalists of a benchmark and the classes they label.

    Attributes:
        source: the labelled source datalist (``training``, ``validation``).
        target: the target datalist (``training``, ``validation``, ``test``, and ``unlabeled`` when used).
        class_names: background first; every model of the benchmark segments these.
    """

    source: str
    target: str
    class_names: tuple[str, ...]


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


def prepare_data(
    out_dir: str | os.PathLike,
    resolution: float,
    target_site: str,
    source_datalist: str | os.PathLike | None = None,
    target_datalist: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    unlabeled: bool = False,
    progress: bool = True,
) -> BenchmarkData:
    """Generate the phantom if a datalist is not given, find the class names and verify both datalists.

    Args:
        out_dir: the benchmark's folder (the phantom goes to ``out_dir/phantom``).
        resolution: the phantom's resolution (mm).
        target_site: the phantom's target site (ignored with ``target_datalist``).
        source_datalist: a labelled source datalist instead of the phantom's source site.
        target_datalist: a target datalist instead of the phantom's target site.
        class_names: the classes; default: the datalists' ``labels`` maps.
        unlabeled: the target's ``unlabeled`` list is needed (semi-supervised rows).
        progress: progress bar while generating the phantom.

    Raises:
        ValueError: ``target_site`` is not a target site of the phantom; the class names cannot be found or disagree.
        DatalistError: a datalist or one of its files is wrong (from ``prepare_datalist``, naming the fix).
    """
    phantom = Path(out_dir) / "phantom"
    if source_datalist is None or target_datalist is None:
        ensure_phantom(phantom, resolution=resolution, progress=progress)
        summary = json.loads((phantom / SUMMARY_FILE).read_text())
        sites = {s["name"]: s for s in summary["sites"]}
        if target_site not in sites or sites[target_site]["role"] != "target":
            raise ValueError(
                f"'{target_site}' is not a target site of the phantom; choose one of "
                f"{[n for n, s in sites.items() if s['role'] == 'target']}."
            )
    source = str(source_datalist or phantom / SOURCE_SITE.name / "datalist.json")
    target = str(target_datalist or phantom / target_site / "datalist.json")
    names = _class_names(source, target, class_names)
    prepare_datalist(
        source, num_classes=len(names), require=("training", "validation"), lists=("training", "validation")
    )
    lists = ("training", "validation", "test") + (("unlabeled",) if unlabeled else ())
    prepare_datalist(target, num_classes=len(names), require=lists, lists=lists)
    return BenchmarkData(source, target, names)
