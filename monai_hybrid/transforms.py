"""Transforms MONAI does not have."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Spacingd

__all__ = ["SelectSliced", "SafeSpacingd"]


class SafeSpacingd(Spacingd):
    """MONAI's ``Spacingd`` that ignores non-dict entries named like a key's meta dict.

    ``Spacingd`` (MONAI 1.6) treats every entry called ``<key>_*`` as that key's meta dict and calls ``.update`` on
    it when the input is NIfTI. MONAI Label puts a string ``image_path`` next to ``image``, so the stock transform
    fails inside a MONAI Label server. This one sets such entries aside during the call; everything else,
    inversion by ``Invertd`` included, is ``Spacingd``'s.
    """

    def __call__(self, data, lazy=None):
        d = dict(data)
        aside = {
            k: d.pop(k)
            for k in list(d)
            if isinstance(k, str)
            and not isinstance(d[k], Mapping)
            and any(k.startswith(f"{key}_") for key in self.keys)
            and not isinstance(d[k], torch.Tensor)
        }
        out = super().__call__(d, lazy=lazy)
        out.update(aside)
        return out


class SelectSliced(MapTransform):
    """Keep the one axial slice nearest to the world height ``data[z_key]`` (mm); entries without it pass through.

    Works after ``Orientationd``/``Spacingd`` because the slice is given in world coordinates: the images must be
    MetaTensors with an affine. The result keeps a singleton last axis, (C, H, W, 1).

    Args:
        keys: the keys to cut.
        z_key: key of the world z coordinate (``select_labeled`` writes ``slice_z_mm``).
    """

    def __init__(self, keys: KeysCollection, z_key: str = "slice_z_mm", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.z_key = z_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if d.get(self.z_key) is None:
            return d
        z = float(d[self.z_key])
        for key in self.key_iterator(d):
            img = d[key]
            if not isinstance(img, MetaTensor):
                raise ValueError(f"{type(self).__name__}: '{key}' must be a MetaTensor with an affine.")
            affine = np.asarray(img.affine, dtype=np.float64)
            depth = img.shape[-1]
            centre = [(s - 1) / 2 for s in img.shape[1:-1]]
            heights = [affine[2, :3] @ np.array([*centre, k]) + affine[2, 3] for k in range(depth)]
            k = int(np.argmin(np.abs(np.asarray(heights) - z)))
            d[key] = img[..., k : k + 1]
        return d
