"""What a bundle calls before training: make the demo data if asked and absent, then verify the datalist."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from monai_hybrid.data.phantom import ensure_phantom
from monai_hybrid.data.verify import verify_datalist

__all__ = ["prepare_datalist"]

logger = logging.getLogger(__name__)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def prepare_datalist(
    datalist: str | os.PathLike,
    num_classes: int | None = None,
    require: Sequence[str] = ("training",),
    lists: Sequence[str] | None = None,
    phantom_dir: str | os.PathLike | None = None,
    phantom_resolution: float = 2.0,
    phantom_seed: int = 0,
    progress: bool = True,
    optional: Sequence[str] = (),
) -> str:
    """Return ``datalist`` once it is known to be sound.

    When ``datalist`` lies inside ``phantom_dir`` (the bundle's demo data folder), the phantom is generated there
    first if it is absent; one made with other settings (``monai-hybrid phantom --lesions``, say) is used as it is
    (regenerated at those settings only when an older version of the project wrote it). Any other datalist (a
    hospital's own data) is only verified. Verification reads every file and raises one error listing every problem.

    Args:
        datalist: the MSD-style datalist JSON.
        num_classes: classes including background (label values must be below it).
        require: lists that must be present and non-empty.
        lists: lists to check (default: all present).
        phantom_dir: where the demo phantom lives; ``None`` never generates.
        phantom_resolution: base resolution of the phantom in mm.
        phantom_seed: seed of the phantom.
        progress: show the phantom's progress bar.
        optional: lists also checked when the datalist has them (a fine-tuning run's ``validation``).

    Returns:
        ``datalist`` as a string.

    Raises:
        monai_hybrid.data.DatalistError: the datalist or its files have problems.
    """
    path = Path(datalist)
    if phantom_dir is not None and _inside(path, Path(phantom_dir)):
        ensure_phantom(
            phantom_dir, seed=phantom_seed, resolution=phantom_resolution, progress=progress, regenerate=False
        )
    if optional:
        from monai_hybrid.data.datalist import read_datalist

        present = read_datalist(path)
        lists = [*(lists or require), *(k for k in optional if k in present and k not in (lists or require))]
    report = verify_datalist(path, num_classes=num_classes, lists=lists, require=require)
    logger.info(report.text())
    return str(path)
