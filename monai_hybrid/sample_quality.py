"""How good are sampled image-mask pairs: consistency of the masks and realism of the images.

* consistency: Dice between each sampled mask and what a separately trained segmenter predicts on the sampled image;
* realism: per-tissue intensity statistics (mean, standard deviation, share of the pixels) of sampled images under
  their sampled masks, against the same statistics of real images of the site under their true labels.

Images are compared in the training intensity range (``ScaleIntensityRangePercentilesd`` to ``[-1, 1]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_dice
from monai.networks.utils import one_hot

__all__ = ["consistency_dice", "tissue_statistics", "compare_statistics", "save_pairs_montage"]


def consistency_dice(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Dice per sample and foreground class between sampled masks and a segmenter's prediction.

    Args:
        labels: sampled masks, (N, 1, *spatial) integers in ``[0, num_classes)``.
        predicted: the segmenter's label map on the sampled images, (N, 1, *spatial).
        num_classes: K, background included.

    Returns:
        (N, K - 1) Dice; NaN where a class is absent from both.
    """
    if labels.shape != predicted.shape or labels.ndim < 3 or labels.shape[1] != 1:
        raise ValueError(
            f"consistency_dice: 'labels' and 'predicted' must both be (N, 1, *spatial), got "
            f"{tuple(labels.shape)} and {tuple(predicted.shape)}."
        )
    y = one_hot(labels.long(), num_classes)
    y_hat = one_hot(predicted.long(), num_classes)
    return compute_dice(y_hat, y, include_background=False, ignore_empty=True)


def tissue_statistics(
    images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Intensity mean and standard deviation, and share of the pixels, of each class over a set of images.

    Args:
        images: (N, 1, *spatial) intensities.
        labels: (N, 1, *spatial) integer label maps of the same shape.
        class_names: names of the label values ``0 .. K - 1``.

    Returns:
        ``{class name: {"mean", "std", "share"}}``; ``share`` is the class's fraction of all pixels, and
        ``mean``/``std`` are NaN for a class with no pixel.
    """
    x = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images, dtype=np.float64)
    y = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if x.shape != y.shape:
        raise ValueError(f"tissue_statistics: 'images' {x.shape} and 'labels' {y.shape} must have the same shape.")
    out = {}
    for k, name in enumerate(class_names):
        v = x[y == k]
        out[name] = {
            "mean": float(v.mean()) if v.size else float("nan"),
            "std": float(v.std()) if v.size else float("nan"),
            "share": float(v.size) / float(max(y.size, 1)),
        }
    return out


def compare_statistics(sampled: dict[str, dict[str, float]], real: dict[str, dict[str, float]]) -> str:
    """A markdown table of ``tissue_statistics`` of sampled against real images, one row per class."""
    lines = ["| class | real mean +- std | sampled mean +- std | real share | sampled share |", "|---|---|---|---|---|"]
    for name in real:
        r, s = real[name], sampled.get(name, {"mean": float("nan"), "std": float("nan"), "share": 0.0})
        lines.append(
            f"| {name} | {r['mean']:.3f} +- {r['std']:.3f} | {s['mean']:.3f} +- {s['std']:.3f} | "
            f"{r['share']:.3f} | {s['share']:.3f} |"
        )
    return "\n".join(lines)


def save_pairs_montage(
    rows: Sequence[tuple[str, torch.Tensor, torch.Tensor]], path: str, class_names: Sequence[str], columns: int = 8
) -> None:
    """A PNG of 2D image-mask pairs: for each row set, one line of images and one of masks.

    Args:
        rows: ``(title, images (N, 1, H, W), labels (N, 1, H, W))`` per set (e.g. sampled and real).
        path: PNG to write.
        class_names: names of the label values, for the legend.
        columns: pairs shown per set.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from monai_hybrid.data.montage import LABEL_COLOURS

    fig, axes = plt.subplots(2 * len(rows), columns, figsize=(1.6 * columns, 1.75 * 2 * len(rows)), squeeze=False)
    for r, (title, images, labels) in enumerate(rows):
        for c in range(columns):
            for ax in (axes[2 * r, c], axes[2 * r + 1, c]):
                ax.set_xticks([])
                ax.set_yticks([])
            if c >= images.shape[0]:
                continue
            # axial slices in RAS voxel order: transpose and flip so anterior is up
            axes[2 * r, c].imshow(images[c, 0].cpu().numpy().T[::-1], cmap="gray", vmin=-1, vmax=1)
            lab = np.clip(labels[c, 0].cpu().numpy().astype(int), 0, len(LABEL_COLOURS) - 1)
            axes[2 * r + 1, c].imshow(LABEL_COLOURS[lab].transpose(1, 0, 2)[::-1], interpolation="nearest")
        axes[2 * r, 0].set_ylabel(f"{title}\nimage", fontsize=8)
        axes[2 * r + 1, 0].set_ylabel(f"{title}\nmask", fontsize=8)
    handles = [Patch(color=LABEL_COLOURS[i], label=n) for i, n in enumerate(class_names) if i > 0]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(str(path), dpi=90)
    plt.close(fig)
