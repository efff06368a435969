"""Which target scans (or slices) are labelled: block ``seed`` of a fixed permutation of the training list, so that
the fine-tuning seeds of one budget label other cases.

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
from monai_hybrid.options import LabelUnit, choose

__all__ = ["select_labeled"]

logger = logging.getLogger(__name__)

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


def _fixed_rng(num_labeled: int, unit: str, permutation_seed: int, *salt: int) -> np.random.Generator:
    """The generator of a budget's fixed permutation: the same for every fine-tuning seed of the budget."""
    return np.random.default_rng([permutation_seed, list(LabelUnit).index(LabelUnit(unit)), num_labeled, *salt])


def select_labeled(
    datalist: str | os.PathLike,
    num_labeled: int | None,
    unit: str = "scans",
    seed: int = 0,
    output_path: str | os.PathLike | None = None,
    key: str = "training",
    permutation_seed: int = 0,
) -> list[dict]:
    """Choose the labelled cases of a fine-tuning run: block ``seed`` of a fixed permutation of the budget.

    Each budget (``num_labeled`` and ``unit``) has one fixed order of the list's scans, and, for every scan, one fixed
    order of its brain slices, both drawn with ``permutation_seed``. Seed ``s`` takes the ``s``-th block of ``k``
    cases along that order, so seeds of one budget label *other* cases: at ``k`` scans, seeds ``0 .. n // k - 1``
    are disjoint (``n`` scans in the list); at ``k`` slices, the slices of seed ``s`` come from ``k`` consecutive
    scans of the order (each scan in turn), and no slice is taken twice while a scan has slices left. Past ``n // k``
    seeds at the scan budgets the blocks wrap around and repeat scans; the log says so.

    Args:
        datalist: the target site's datalist.
        num_labeled: k, the number of labelled scans or slices; ``None`` or 0 takes every scan of ``key`` (the
            oracle).
        unit: ``scans`` (k whole volumes) or ``slices`` (k axial slices).
        seed: the block of the budget's permutation (``>= 0``); the same seed gives the same cases.
        output_path: JSON file to record the chosen cases in (beside the run, for reproduction).
        key: the list to draw from.
        permutation_seed: seed of the budgets' fixed permutations.

    Returns:
        Entries with absolute ``image`` and ``label`` paths, plus ``slice_z_mm`` for slices.

    Raises:
        ValueError: an unknown unit, a negative seed or count, more scans asked for than the list holds, or a scan
            with no slice left.
    """
    unit = choose(unit, LabelUnit, "select_labeled", "unit")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"select_labeled: 'seed' must be a non-negative integer (a block of the permutation), got {seed!r}."
        )
    entries = load_list(datalist, key)
    if not entries:
        raise ValueError(f"select_labeled: the '{key}' list of '{datalist}' is empty.")
    n = len(entries)
    if not num_labeled:
        chosen = entries
    elif num_labeled < 0:
        raise ValueError(f"select_labeled: 'num_labeled' must be >= 0, got {num_labeled}.")
    elif unit == "scans":
        if num_labeled > n:
            raise ValueError(
                f"select_labeled: 'num_labeled' is {num_labeled} but '{key}' of '{datalist}' holds only {n} scans."
            )
        order = _fixed_rng(num_labeled, unit, permutation_seed).permutation(n)
        positions = [(seed * num_labeled + j) % n for j in range(num_labeled)]
        if (seed + 1) * num_labeled > n:
            logger.warning(
                "select_labeled: seed %d at %d scans repeats scans of earlier seeds (only %d disjoint blocks of %d "
                "in %d scans).",
                seed,
                num_labeled,
                n // num_labeled,
                num_labeled,
                n,
            )
        chosen = [entries[i] for i in sorted(order[p] for p in positions)]
    else:
        order = _fixed_rng(num_labeled, unit, permutation_seed).permutation(n)
        chosen = []
        for j in range(num_labeled):
            position = seed * num_labeled + j
            index = int(order[position % n])
            visit = position // n  # how many times this scan was visited before, over all seeds
            entry = entries[index]
            candidates = _brain_slices_mm(entry["label"])
            if visit >= len(candidates):
                raise ValueError(
                    f"select_labeled: no slice left in '{entry['label']}' for seed {seed} at {num_labeled} slices "
                    f"({len(candidates)} brain slices, all taken by lower seeds); use fewer seeds or more scans."
                )
            slices = _fixed_rng(num_labeled, unit, permutation_seed, index).permutation(len(candidates))
            chosen.append({**entry, "slice_z_mm": round(float(candidates[slices[visit]]), 3)})
    record = {
        "datalist": str(datalist),
        "key": key,
        "unit": unit,
        "num_labeled": num_labeled,
        "seed": seed,
        "permutation_seed": permutation_seed,
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
