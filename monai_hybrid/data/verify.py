"""Check a datalist and every file it names before any compute is spent (in the spirit of nnU-Net's
``verify_dataset_integrity``, but collecting every problem into one error that says how to fix each).

Checked: the JSON and its lists (present, non-empty where needed, entries with an ``image`` and, in labelled lists, a
``label``); duplicate entries and subjects in two lists; missing or unreadable files; NaN or Inf voxels; image and
label of different shape, spacing or position; label values that are not integers or not in ``[0, num_classes)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monai_hybrid.data.datalist import ALL_LISTS, LABELED_LISTS, read_datalist, resolve_path
from monai_hybrid.data.io import Volume, read_volume

__all__ = ["Problem", "DatalistError", "VerifyReport", "verify_datalist"]

logger = logging.getLogger(__name__)

_SPACING_RTOL = 1e-3
_ORIGIN_ATOL_MM = 1e-2
_MAX_PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a datalist.

    Attributes:
        where: the place, e.g. ``"training[3] 'label'"`` or ``"list 'validation'"``.
        message: what was expected and what was found.
        fix: what to do about it.
        path: the file concerned, if any.
    """

    where: str
    message: str
    fix: str
    path: str | None = None

    def __str__(self) -> str:
        file = f" ({self.path})" if self.path else ""
        return f"{self.where}{file}: {self.message} Fix: {self.fix}"


class DatalistError(ValueError):
    """A datalist failed verification; ``problems`` lists every problem found."""

    def __init__(self, datalist: str, problems: Sequence[Problem]):
        self.datalist = datalist
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:_MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - _MAX_PROBLEMS_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        n = len(self.problems)
        super().__init__(
            f"Datalist '{datalist}' failed verification with {n} problem{'s' if n != 1 else ''}:\n{shown}{tail}"
        )


@dataclass
class VerifyReport:
    """What a successful verification found.

    Attributes:
        datalist: path of the datalist.
        counts: entries per list.
        label_values: the label values seen across all label files.
        spacings: distinct voxel spacings (mm) of the images.
        shapes: distinct spatial shapes of the images.
    """

    datalist: str
    counts: dict[str, int] = field(default_factory=dict)
    label_values: list[int] = field(default_factory=list)
    spacings: list[tuple[float, ...]] = field(default_factory=list)
    shapes: list[tuple[int, ...]] = field(default_factory=list)

    def text(self) -> str:
        lists = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return (
            f"Datalist '{self.datalist}' is valid: {lists}; label values {self.label_values}; "
            f"image spacings {[list(s) for s in self.spacings]} mm; shapes {[list(s) for s in self.shapes]}."
        )


def _check_file(
    path: str, where: str, is_label: bool, num_classes: int | None
) -> tuple[Volume | None, list[Problem], set]:
    problems: list[Problem] = []
    try:
        vol = read_volume(path)
    except FileNotFoundError:
        return (
            None,
            [
                Problem(
                    where,
                    "file not found.",
                    "correct the path (relative paths are relative to the datalist's folder) or remove the entry.",
                    path,
                )
            ],
            set(),
        )
    except Exception as err:  # any reader failure is reported, not raised
        return (
            None,
            [
                Problem(
                    where,
                    f"unreadable ({type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:200]}).",
                    "re-export the file as NIfTI (.nii.gz), NRRD or a DICOM series folder.",
                    path,
                )
            ],
            set(),
        )
    array = vol.array
    values: set = set()
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            problems.append(
                Problem(
                    where,
                    f"{int(bad.sum())} voxels are NaN or Inf; expected finite values.",
                    "replace them (e.g. with 0) when exporting the file.",
                    path,
                )
            )
    if is_label and not problems:
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.mod(array, 1) == 0):
            problems.append(
                Problem(
                    where,
                    "label values are not integers; expected an integer label map.",
                    "save the label as an integer map (nearest-neighbour resampling only).",
                    path,
                )
            )
        else:
            values = set(np.unique(array).astype(np.int64).tolist())
            bad = sorted(v for v in values if v < 0 or (num_classes is not None and v >= num_classes))
            if bad:
                expected = f"[0, {num_classes})" if num_classes is not None else ">= 0"
                problems.append(
                    Problem(
                        where,
                        f"label values {bad[:10]} are outside {expected}.",
                        "remap the labels to 0..num_classes-1 or set num_classes to the number of "
                        "classes including background.",
                        path,
                    )
                )
    return vol, problems, values


def _entries(data: dict, key: str, base: Path, problems: list[Problem]) -> list[tuple[int, dict]]:
    items = data.get(key)
    if not isinstance(items, list):
        problems.append(
            Problem(
                f"list '{key}'",
                f"expected a list of entries, found {type(items).__name__}.",
                f'make \'{key}\' a JSON list of {{"image": ..., "label": ...}} objects.',
            )
        )
        return []
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"image": item}
        if not isinstance(item, dict) or not isinstance(item.get("image"), str):
            problems.append(
                Problem(
                    where,
                    f"expected an object with an 'image' path, found {item!r:.80}.",
                    'write the entry as {"image": "path", "label": "path"}.',
                )
            )
            continue
        entry = {"image": resolve_path(item["image"], base)}
        if key in LABELED_LISTS:
            if not isinstance(item.get("label"), str):
                problems.append(
                    Problem(
                        f"{where} 'label'",
                        f"the '{key}' list needs labels, but this entry has none.",
                        "add its label path, or move the entry to the 'unlabeled' list.",
                        entry["image"],
                    )
                )
                continue
            entry["label"] = resolve_path(item["label"], base)
        out.append((i, entry))
    return out


def verify_datalist(
    datalist: str | os.PathLike,
    num_classes: int | None = None,
    lists: Sequence[str] | None = None,
    require: Sequence[str] = ("training",),
    base_dir: str | os.PathLike | None = None,
    workers: int = 4,
) -> VerifyReport:
    """Verify a datalist and the files it lists.

    Args:
        datalist: path of the MSD-style JSON.
        num_classes: number of classes including background; label values must be in ``[0, num_classes)``.
            ``None`` only checks that labels are non-negative integers.
        lists: the lists to check (default: every one of ``training, validation, test, unlabeled`` present).
        require: lists that must be present and non-empty.
        base_dir: folder that relative paths are relative to (default: the datalist's folder).
        workers: threads that read files.

    Returns:
        What was found, when nothing is wrong.

    Raises:
        DatalistError: listing every problem, each with the list, index, key, file and a fix.
    """
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
        raise ValueError(f"verify_datalist: 'num_classes' must be an integer >= 2, got {num_classes!r}.")
    unknown = [k for k in list(lists or []) + list(require) if k not in ALL_LISTS]
    if unknown:
        raise ValueError(f"verify_datalist: unknown list names {unknown}; expected some of {list(ALL_LISTS)}.")
    path = str(datalist)
    try:
        data = read_datalist(datalist)
    except (FileNotFoundError, ValueError) as err:
        raise DatalistError(path, [Problem("datalist", str(err), "fix the file or the path given.")]) from err
    base = Path(base_dir) if base_dir is not None else Path(datalist).resolve().parent
    problems: list[Problem] = []
    keys = list(lists) if lists is not None else [k for k in ALL_LISTS if k in data]
    keys += [k for k in require if k not in keys]
    entries: dict[str, list[tuple[int, dict]]] = {}
    for key in keys:
        if key not in data:
            problems.append(
                Problem(
                    f"list '{key}'", "is missing; this run needs it.", f"add a '{key}' list of entries to the datalist."
                )
            )
            continue
        entries[key] = _entries(data, key, base, problems)
        if key in require and not data[key]:
            problems.append(
                Problem(f"list '{key}'", "is empty; this run needs at least one entry.", f"add entries to '{key}'.")
            )
    seen: dict[str, str] = {}
    jobs = []
    for key, items in entries.items():
        for i, entry in items:
            where = f"{key}[{i}]"
            image = os.path.normpath(entry["image"])
            if image in seen:
                first = seen[image]
                same_list = first.split("[")[0] == key
                problems.append(
                    Problem(
                        f"{where} 'image'",
                        f"duplicate of {first}." if same_list else f"the same subject is also in {first}.",
                        "remove the duplicate entry."
                        if same_list
                        else "keep each subject in one list only, or results on the held-out lists are not "
                        "independent.",
                        entry["image"],
                    )
                )
                continue
            seen[image] = where
            jobs.append((where, key, entry))

    def check(job):
        where, key, entry = job
        img, probs, _ = _check_file(entry["image"], f"{where} 'image'", False, None)
        values: set = set()
        if "label" in entry:
            lab, lprobs, values = _check_file(entry["label"], f"{where} 'label'", True, num_classes)
            probs += lprobs
            if img is not None and lab is not None:
                probs += _compare_geometry(img, lab, where, entry["label"])
        return img, probs, values

    report = VerifyReport(datalist=path, counts={k: len(v) for k, v in entries.items()})
    values: set = set()
    spacings: set = set()
    shapes: set = set()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for img, probs, vals in pool.map(check, jobs):
            problems += probs
            values |= vals
            if img is not None:
                spacings.add(tuple(round(s, 3) for s in img.spacing))
                shapes.add(tuple(img.shape))
    if problems:
        raise DatalistError(path, problems)
    report.label_values = sorted(int(v) for v in values)
    report.spacings = sorted(spacings)
    report.shapes = sorted(shapes)
    return report


def _compare_geometry(image: Volume, label: Volume, where: str, label_path: str) -> list[Problem]:
    if tuple(image.shape) != tuple(label.shape):
        return [
            Problem(
                f"{where} 'label'",
                f"shape {list(label.shape)} differs from the image's {list(image.shape)}.",
                "export the label on the image's voxel grid (resample it with nearest neighbour).",
                label_path,
            )
        ]
    if not np.allclose(image.spacing, label.spacing, rtol=_SPACING_RTOL):
        return [
            Problem(
                f"{where} 'label'",
                f"spacing {[round(s, 4) for s in label.spacing]} mm differs from the image's "
                f"{[round(s, 4) for s in image.spacing]} mm.",
                "export the label with the image's header (same spacing, origin and direction).",
                label_path,
            )
        ]
    if not np.allclose(image.affine, label.affine, atol=_ORIGIN_ATOL_MM, rtol=_SPACING_RTOL):
        return [
            Problem(
                f"{where} 'label'",
                "origin or direction differs from the image's (the affines differ).",
                "export the label with the image's header (same spacing, origin and direction).",
                label_path,
            )
        ]
    return []
