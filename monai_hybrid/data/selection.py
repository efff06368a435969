"""Which target scans (or slices) are labelled: a reproducible draw of k from the training list.

The extreme 2D case labels single axial slices. A chosen slice is recorded by its world height ``slice_z_mm``
(RAS, mm), which does not change when the volume is reoriented or resampled; ``SelectSliced`` cuts it out after
resampling.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from monai_hybrid.data.datalist import load_list

__all__ = ["select_labeled", "UNITS"]

logger = logging.getLogger(__name__)

UNITS = ("scans", "slices")
#: A slice qualifies when its brain area is at least this share of the largest slice's.
_MIN_SLICE_SHARE = 0.3


def _brain_slices_mm(label_path: str) -> np.ndarray:
    """World z (mm) of the axial slices of a label volume that hold enough brain."""
    import nibabel as nib

    img = nib.as_closest_canonical(nib.load(label_path))
    label = np.asarray(img.dataobj)
    area = (label > 0).reshape(-1, label.shape[2]).sum(0)
    keep = np.nonzero(area >= _MIN_SLICE_SHARE * area.max())[0]
    return (img.affine @ np.stack([np.zeros_like(keep), np.zeros_like(keep), keep, np.ones_like(keep)]))[2]


def select_labeled(
    datalist: str | os.PathLike,
    num_labeled: int | None,
    unit: str = "scans",
    seed: int = 0,
    output_path: str | os.PathLike | None = None,
    key: str = "training",
) -> list[dict]:
    """Draw the labelled cases of a fine-tuning run.

    Args:
        datalist: the target site's datalist.
        num_labeled: k, the number of labelled scans or slices; ``None`` or 0 takes every scan of ``key`` (the
            oracle).
        unit: ``scans`` (k whole volumes) or ``slices`` (k axial slices, spread over the scans in turn).
        seed: seed of the draw; the same seed gives the same cases.
        output_path: JSON file to record the chosen cases in (beside the run, for reproduction).
        key: the list to draw from.

    Returns:
        Entries with absolute ``image`` and ``label`` paths, plus ``slice_z_mm`` for slices.

    Raises:
        ValueError: an unknown unit, or more scans asked for than the list holds.
    """
    if unit not in UNITS:
        raise ValueError(f"select_labeled: 'unit' must be one of {UNITS}, got {unit!r}.")
    entries = load_list(datalist, key)
    if not entries:
        raise ValueError(f"select_labeled: the '{key}' list of '{datalist}' is empty.")
    rng = np.random.default_rng(seed)
    if not num_labeled:
        chosen = entries
    elif num_labeled < 0:
        raise ValueError(f"select_labeled: 'num_labeled' must be >= 0, got {num_labeled}.")
    elif unit == "scans":
        if num_labeled > len(entries):
            raise ValueError(
                f"select_labeled: 'num_labeled' is {num_labeled} but '{key}' of '{datalist}' holds only "
                f"{len(entries)} scans."
            )
        chosen = [entries[i] for i in sorted(rng.choice(len(entries), size=num_labeled, replace=False))]
    else:
        order = rng.permutation(len(entries))
        chosen, used = [], {}
        for n in range(num_labeled):
            entry = entries[order[n % len(entries)]]
            candidates = [z for z in _brain_slices_mm(entry["label"]) if z not in used.get(entry["image"], set())]
            if not candidates:
                raise ValueError(f"select_labeled: no slice left to draw in '{entry['label']}'.")
            z = float(candidates[rng.integers(len(candidates))])
            used.setdefault(entry["image"], set()).add(z)
            chosen.append({**entry, "slice_z_mm": round(z, 3)})
    record = {
        "datalist": str(datalist),
        "key": key,
        "unit": unit,
        "num_labeled": num_labeled,
        "seed": seed,
        "cases": chosen,
    }
    if output_path is not None:
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        Path(output_path).write_text(json.dumps(record, indent=2))
    logger.info(
        "Labelled %s: %s",
        unit,
        [Path(c["image"]).name + (f"@z={c['slice_z_mm']}" if "slice_z_mm" in c else "") for c in chosen],
    )
    return chosen
