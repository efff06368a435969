"""MSD-style datalists: ``{"training": [{"image": ..., "label": ...}], "validation": [...], "test": [...],
"unlabeled": [{"image": ...}]}``, with paths relative to the datalist's folder (or absolute).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monai_hybrid.jsonio import read_json_object

__all__ = [
    "ALL_LISTS",
    "IMAGE_SUFFIXES",
    "LABELED_LISTS",
    "datalist_class_names",
    "announce_validation",
    "input_images",
    "input_root",
    "load_list",
    "read_datalist",
    "resolve_path",
]

#: Lists whose entries must carry a label.
LABELED_LISTS: tuple[str, ...] = ("training", "validation", "test")
ALL_LISTS: tuple[str, ...] = LABELED_LISTS + ("unlabeled",)


def read_datalist(path: str | os.PathLike) -> dict:
    """Read a datalist JSON.

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        ValueError: naming the path and the position when it is not valid JSON or not an object.
    """
    return read_json_object(
        path,
        "Datalist",
        "give the path of an MSD-style JSON object with 'training', 'validation', 'test' and 'unlabeled' lists "
        "(see docs/how-to/own-data.md).",
    )


def datalist_class_names(path: str | os.PathLike) -> tuple[str, ...] | None:
    """The class names of a datalist's ``labels`` map (the MSD convention: ``{"0": "background", "1": ...}``).

    Returns:
        The names in label order, or ``None`` when the datalist has no ``labels`` map.

    Raises:
        ValueError: the map is not label value -> name, or its values are not 0, 1, ..., K - 1 (naming the file).
    """
    data = read_datalist(path)
    labels = data.get("labels")
    if labels is None:
        return None
    fix = 'write it as {"0": "background", "1": "<class 1>", ...}, one entry per label value from 0 to K - 1'
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ValueError(f"Datalist '{path}': 'labels' must map label values to class names; {fix}.")
    try:
        values = sorted(int(k) for k in labels)
    except ValueError:
        raise ValueError(
            f"Datalist '{path}': the keys of 'labels' must be label values, got {list(labels)}; {fix}."
        ) from None
    if values != list(range(len(values))) or len(values) < 2:
        raise ValueError(f"Datalist '{path}': 'labels' has the values {values}; {fix}.")
    return tuple(labels[k] for k in sorted(labels, key=int))


def announce_validation(cases: list) -> bool:
    """Whether there are validation ``cases``; logs a warning that the run goes without validation when there are
    none (a site with one labelled scan has none to spare)."""
    if cases:
        return True
    logging.getLogger("monai_hybrid").warning(
        "No validation cases: fine-tuning runs without validation; models/model.pt, the last model, is deployed as "
        "always."
    )
    return False


def resolve_path(value: str, base_dir: Path) -> str:
    """``value`` made absolute against ``base_dir`` unless it already is."""
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else (base_dir / p))


def load_list(path: str | os.PathLike, key: str, base_dir: str | os.PathLike | None = None) -> list[dict]:
    """One list of a datalist with every path made absolute (the folder of the datalist by default).

    Args:
        path: the datalist JSON.
        key: ``training``, ``validation``, ``test`` or ``unlabeled``.
        base_dir: folder that relative paths are relative to.

    Returns:
        The list's entries as dicts with absolute ``image`` (and ``label``) paths; an absent key gives ``[]``.
    """
    data = read_datalist(path)
    base = Path(base_dir) if base_dir is not None else Path(path).resolve().parent
    out = []
    for item in data.get(key, []) or []:
        if isinstance(item, str):
            item = {"image": item}
        entry = dict(item)
        for k in ("image", "label"):
            if isinstance(entry.get(k), str):
                entry[k] = resolve_path(entry[k], base)
        out.append(entry)
    return out


#: File endings read as images when a folder is given.
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def input_images(source: str | os.PathLike, key: str = "test") -> list[dict]:
    """The images to segment, as ``[{"image": path}]``.

    Args:
        source: a datalist JSON (its ``key`` list is used), a folder of image files (NIfTI, NRRD, MHA), a folder of
            DICOM files (one series), a folder of DICOM series folders, or a single image file.
        key: the list of a datalist to use.

    Raises:
        FileNotFoundError: ``source`` does not exist or holds no image.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"Input '{path}' does not exist; give a datalist, an image, or a folder of images.")
    if path.is_file() and path.suffix.lower() == ".json":
        return [{"image": e["image"]} for e in load_list(path, key)]
    if path.is_file():
        return [{"image": str(path)}]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
    if files:
        return [{"image": str(p)} for p in files]
    if any(p.is_file() for p in path.iterdir()):
        return [{"image": str(path)}]  # a DICOM series
    series = sorted(p for p in path.iterdir() if p.is_dir())
    if series:
        return [{"image": str(p)} for p in series]
    raise FileNotFoundError(f"Input folder '{path}' holds no image (NIfTI, NRRD, MHA or DICOM).")


def input_root(source: str | os.PathLike, key: str = "test") -> str:
    """The deepest folder that holds every input of ``source`` (``input_images``), for ``SaveImaged``'s
    ``data_root_dir`` and the evaluation's case names: outputs keep the inputs' folders below it, so two scans with
    one file name in two folders (``study1/t1.nii.gz``, ``study2/t1.nii.gz``) get two outputs, not one overwritten.
    Inputs in one folder keep flat names.

    Args:
        source: as ``input_images``.
        key: as ``input_images``.

    Returns:
        An absolute folder; ``""`` where ``source`` does not exist (MONAI Label parses inference.yaml without an
        input: it gives the image itself).
    """
    if not Path(source).exists():
        return ""
    images = [str(e["image"]) for e in input_images(source, key)]
    parents = [os.path.dirname(os.path.abspath(i.rstrip("/\\"))) for i in images]
    return os.path.commonpath(parents) if parents else ""
