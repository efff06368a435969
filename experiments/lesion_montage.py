"""Montage of the phantom's white-matter lesions: FLAIR target subjects of each load category, with lesion contours.

For each category (none, punctate, periventricular, confluent) the first subject of the FLAIR target site whose
lesions fall in it is rendered; the axial slice with the most lesion voxels is shown twice, as is and with the
contour of its lesion label. Writes a PNG (docs/images/phantom_lesions.png by default):

    python experiments/lesion_montage.py [--seed 0] [--resolution 2] [--out docs/images/phantom_lesions.png]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from monai_hybrid.data.lesions import LESION_CATEGORIES
from monai_hybrid.data.montage import axial_slice
from monai_hybrid.data.phantom import PhantomConfig, render_subject, subject_lesions

logger = logging.getLogger("lesion_montage")

SITE = "site_c_flair"
LESION = 4


def first_subjects(config: PhantomConfig, site_index: int) -> dict[str, int]:
    """The first subject of each lesion category at the site (lesion draws only, nothing rendered)."""
    found: dict[str, int] = {}
    subject = 0
    while len(found) < len(LESION_CATEGORIES):
        found.setdefault(subject_lesions(config, site_index, subject).category, subject)
        subject += 1
    return {c.name: found[c.name] for c in LESION_CATEGORIES}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=float, default=2.0, help="base voxel size in mm")
    parser.add_argument("--out", default="docs/images/phantom_lesions.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    config = PhantomConfig(seed=args.seed, resolution=args.resolution, lesions=True)
    site_index = [s.name for s in config.sites].index(SITE)
    subjects = first_subjects(config, site_index)
    fig, axes = plt.subplots(2, len(subjects), figsize=(2.9 * len(subjects), 6.4), squeeze=False)
    for col, (category, subject) in enumerate(subjects.items()):
        model = subject_lesions(config, site_index, subject)
        image, label, affine = render_subject(config, site_index, subject)
        per_slice = (label == LESION).sum(axis=(0, 1))
        k = int(np.argmax(per_slice)) if per_slice.any() else int(round((15.0 - affine[2, 3]) / affine[2, 2]))
        z_mm = float(affine[2, 2] * k + affine[2, 3])
        plane = axial_slice(image.astype(np.float32), affine, z_mm)
        lesion = axial_slice((label == LESION).astype(np.float32), affine, z_mm)
        vmax = float(np.percentile(plane, 99.5)) or 1.0
        for row in range(2):
            ax = axes[row, col]
            ax.imshow(plane, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            if row == 1 and lesion.any():
                ax.contour(lesion, levels=[0.5], colors="red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(f"{category}: {model.load_ml:.1f} ml\nsubject {subject}, z = {z_mm:.0f} mm", fontsize=9)
        voxels = int(per_slice.sum())
        logger.info("%s: subject %d, %.2f ml drawn, %d lesion voxels", category, subject, model.load_ml, voxels)
    axes[1, 0].set_ylabel("lesion label contour", fontsize=9)
    axes[0, 0].set_ylabel("FLAIR", fontsize=9)
    fig.suptitle(f"{SITE}, seed {args.seed}, {args.resolution:g} mm base resolution", fontsize=10)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    plt.close(fig)
    logger.info("wrote %s in %.1f s", args.out, time.perf_counter() - start)


if __name__ == "__main__":
    main()
