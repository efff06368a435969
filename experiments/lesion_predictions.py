"""Lesion predictions of one row of the lesion benchmark on one test subject, one panel per label budget.

Reads a benchmark folder that ran the ``lesions`` part (``monai-hybrid benchmark --parts lesions``): the test
subject of the chosen cohort whose reference lesion volume is the median of the subjects with lesions (a typical
subject, not the easiest), its axial slice with the most lesion voxels, the FLAIR image with the reference lesion
contour, then for each budget the row's predicted lesion (filled) over the reference contour, with that case's lesion
Dice and lesion-wise F1 from the run's metrics.json. Writes a PNG (docs/images/lesions_predictions.png by default):

    python experiments/lesion_predictions.py --bench BENCH [--row hybrid] [--seed 0] [--cohort fresh]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from monai_hybrid.data.montage import axial_slice

logger = logging.getLogger("lesion_predictions")

LESION = 4
BUDGETS = {"scans1": "1 scan", "scans3": "3 scans", "scans5": "5 scans"}


def typical_subject(datalist: Path) -> tuple[dict, int]:
    """The test entry whose lesion volume (voxels) is the median of the entries with lesions, and that volume."""
    entries = json.loads(datalist.read_text())["test"]
    volumes = [int((np.asarray(nib.load(str(datalist.parent / e["label"])).dataobj) == LESION).sum()) for e in entries]
    with_lesions = sorted((v, i) for i, v in enumerate(volumes) if v > 0)
    if not with_lesions:
        raise ValueError(f"No test subject of '{datalist}' has a lesion (label {LESION}).")
    volume, index = with_lesions[len(with_lesions) // 2]
    return entries[index], volume


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True, help="the benchmark folder")
    parser.add_argument("--row", default="hybrid")
    parser.add_argument("--seed", type=int, default=0, help="fine-tuning seed")
    parser.add_argument("--site", default="site_c_flair")
    parser.add_argument("--cohort", choices=("fresh", "development"), default="fresh")
    parser.add_argument("--out", default="docs/images/lesions_predictions.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bench = Path(args.bench)
    phantom = bench / ("phantom_fresh_lesions" if args.cohort == "fresh" else "phantom_lesions")
    datalist = phantom / args.site / "datalist.json"
    entry, volume = typical_subject(datalist)
    image_nii = nib.load(str(datalist.parent / entry["image"]))
    label = np.asarray(nib.load(str(datalist.parent / entry["label"])).dataobj)
    affine = image_nii.affine
    k = int(np.argmax((label == LESION).sum(axis=(0, 1))))
    z_mm = float(affine[2, 2] * k + affine[2, 3])
    image = axial_slice(np.asarray(image_nii.dataobj, dtype=np.float32), affine, z_mm)
    reference = axial_slice((label == LESION).astype(np.float32), affine, z_mm)
    vmax = float(np.percentile(image, 99.5)) or 1.0
    name = Path(entry["image"]).name.removesuffix(".nii.gz")
    folder = "eval_fresh" if args.cohort == "fresh" else "eval"

    fig, axes = plt.subplots(1, 1 + len(BUDGETS), figsize=(3.0 * (1 + len(BUDGETS)), 3.4), squeeze=False)
    axes = axes[0]
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
    axes[0].contour(reference, levels=[0.5], colors="red", linewidths=0.8)
    spacing = np.abs(np.diag(affine)[:3])
    ml = volume * float(np.prod(spacing)) / 1000.0
    axes[0].set_title(f"FLAIR, reference lesions (red)\n{name}, {ml:.1f} ml", fontsize=8)
    for ax, (key, budget) in zip(axes[1:], BUDGETS.items(), strict=True):
        run = bench / "runs" / f"{args.row}_{args.site}_lesions_{key}_seed{args.seed}" / folder
        seg = np.asarray(nib.load(str(run / f"{name}_seg.nii.gz")).dataobj)
        cases = {c["case"]: c for c in json.loads((run / "metrics.json").read_text())["cases"]}
        case = next(c for n, c in cases.items() if name in n)
        predicted = axial_slice((seg == LESION).astype(np.float32), affine, z_mm)
        ax.imshow(image, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        ax.imshow(np.ma.masked_where(predicted < 0.5, predicted), cmap="autumn", alpha=0.6, interpolation="nearest")
        ax.contour(reference, levels=[0.5], colors="red", linewidths=0.8)
        scores = f"lesion Dice {case['lesion_dice']:.2f}, F1 {case['lesion_f1']:.2f}"
        ax.set_title(f"{args.row}, {budget} (seed {args.seed})\n{scores}", fontsize=8)
        logger.info("%s: lesion Dice %.3f, F1 %.3f", budget, case["lesion_dice"], case["lesion_f1"])
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{args.site} with lesions, {args.cohort} test cohort, z = {z_mm:.0f} mm", fontsize=9)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
