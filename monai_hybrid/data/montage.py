"""A montage of scans: one row of images and one of labels, an axial slice through the same world point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["LABEL_COLOURS", "save_montage", "axial_slice"]

LABEL_COLOURS = np.array(
    [[0, 0, 0], [0.2, 0.6, 1.0], [0.9, 0.4, 0.2], [1.0, 1.0, 0.8], [1.0, 0.0, 0.6]], dtype=np.float32
)


def axial_slice(volume: np.ndarray, affine: np.ndarray, z_mm: float) -> np.ndarray:
    """The axial slice of ``volume`` nearest to world height ``z_mm``, in neurological display order.

    Args:
        volume: (X, Y, Z) array whose affine is axis-aligned (RAS or LPS).
        affine: (4, 4) voxel-to-world matrix.
        z_mm: world z coordinate of the slice.

    Returns:
        (Y, X) array with anterior up and the subject's right on the right of the image.
    """
    k = int(np.clip(round((z_mm - affine[2, 3]) / affine[2, 2]), 0, volume.shape[2] - 1))
    plane = volume[:, :, k]
    if affine[0, 0] < 0:
        plane = plane[::-1, :]
    if affine[1, 1] < 0:
        plane = plane[:, ::-1]
    return plane.T[::-1, :]


def save_montage(
    scans: Sequence[tuple[str, np.ndarray, np.ndarray | None, np.ndarray]],
    path: str | Path,
    class_names: Sequence[str],
    z_mm: float = 15.0,
    title: str | None = None,
) -> None:
    """Save a PNG with an axial slice of each scan and, below it, its labels.

    Args:
        scans: ``(title, image, label or None, affine)`` per column; arrays (X, Y, Z).
        path: the PNG to write.
        class_names: names of the label values, for the legend.
        z_mm: world height of the slices (15 mm passes through the lateral ventricles).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    has_labels = any(label is not None for _, _, label, _ in scans)
    rows = 2 if has_labels else 1
    fig, axes = plt.subplots(rows, len(scans), figsize=(2.6 * len(scans), 3.0 * rows), squeeze=False)
    for col, (name, image, label, affine) in enumerate(scans):
        plane = axial_slice(np.asarray(image, dtype=np.float32), affine, z_mm)
        vmax = float(np.percentile(plane, 99.5)) or 1.0
        axes[0, col].imshow(plane, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        axes[0, col].set_title(name, fontsize=9)
        if has_labels:
            ax = axes[1, col]
            if label is not None:
                lab = axial_slice(np.asarray(label), affine, z_mm).astype(int)
                ax.imshow(LABEL_COLOURS[np.clip(lab, 0, len(LABEL_COLOURS) - 1)], interpolation="nearest")
            else:
                ax.text(0.5, 0.5, "no label", ha="center", va="center", transform=ax.transAxes)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=LABEL_COLOURS[i], label=n) for i, n in enumerate(class_names) if i > 0]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(str(path), dpi=90)
    plt.close(fig)
