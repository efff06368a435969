"""Transforms MONAI does not have."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, RandomizableTrait, Spacingd
from monai.utils import convert_to_dst_type
from scipy import ndimage

__all__ = ["IntensitySubClustersd", "RandPartialVolumed", "SelectSliced", "SafeSpacingd"]


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


def _blur(volume: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel of ``volume`` (C, *spatial) with ``sigma`` voxels along every spatial axis
    longer than one voxel (a single slice is not blurred through its thickness); edges repeat the border voxel."""
    sigmas = [0.0] + [sigma if n > 1 else 0.0 for n in volume.shape[1:]]
    return ndimage.gaussian_filter(volume, sigma=sigmas, mode="nearest", truncate=3.0)


def _label_map(label: torch.Tensor | np.ndarray, name: str, key: Hashable) -> np.ndarray:
    """The integer label map (1, *spatial) of ``label``, checked."""
    values = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label)
    if values.ndim not in (3, 4) or values.shape[0] != 1:
        raise ValueError(
            f"{name}: '{key}' must be a label map (1, *spatial) with 2 or 3 spatial axes, got {values.shape}."
        )
    if values.size and (values.min() < 0 or not np.array_equal(values, np.round(values))):
        raise ValueError(f"{name}: '{key}' must hold non-negative integer labels.")
    return values.astype(np.int64)


class IntensitySubClustersd(MapTransform):
    """Split each tissue label into ``clusters`` sub-labels by the intensity quantiles of the source image within it,
    into a new label map for synthesis (TorchIO's ``RandomLabelsToImage`` then draws one Gaussian per sub-label).

    With three or four tissue classes, one Gaussian per class gives flat synthetic tissues; real MR tissue has
    intensity structure within one label (bias field, partial volume at borders, sub-structures). Sub-label ``c`` of
    a label holds its voxels between the label's ``c/clusters`` and ``(c+1)/clusters`` intensity quantiles, so the
    sub-labels of one label are ordered by intensity (0: darkest). The quantiles are taken on the image blurred by
    ``smooth_sigma`` voxels within the label (a normalised convolution: neighbouring labels do not bleed in), so
    that the sub-labels follow the image's structure rather than its noise; the image is the mean over its
    channels.

    Numbering: with ``split_background=False`` (the default), background (0) stays one label, 0, and label
    ``l >= 1`` gives sub-labels ``1 + (l - 1) * clusters + c``; with ``split_background=True`` label ``l`` gives
    ``l * clusters + c``. The background is kept whole by default because most of it is air: its intensity
    quantiles would partition noise. With ``clusters=1`` the output is the label map itself (a copy), so synthesis
    draws exactly as it does from the label map.

    Args:
        keys: the label map key(s), each (1, *spatial) with non-negative integer labels.
        image_key: the source image, (C, *spatial) with the label map's spatial shape.
        output_key: where the synthesis label map is written; with several ``keys``, ``{key}_{output_key}``.
        clusters: sub-labels per label (>= 1).
        split_background: also split label 0.
        smooth_sigma: blur (voxels) of the image before its quantiles are taken (>= 0; 0: none).
        allow_missing_keys: don't raise if a key is missing.

    Returns (``__call__``):
        The dict with ``output_key`` (1, *spatial) added: ``uint8`` when the sub-labels fit, else ``int32``, of
        the label map's type (a MetaTensor keeps its meta data).
    """

    def __init__(
        self,
        keys: KeysCollection,
        image_key: str = "image",
        output_key: str = "synthesis_labels",
        clusters: int = 1,
        split_background: bool = False,
        smooth_sigma: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        name = type(self).__name__
        if isinstance(clusters, bool) or not isinstance(clusters, (int, np.integer)) or clusters < 1:
            raise ValueError(f"{name}: 'clusters' must be an integer >= 1, got {clusters!r}.")
        if not isinstance(split_background, bool):
            raise ValueError(f"{name}: 'split_background' must be true or false, got {split_background!r}.")
        if isinstance(smooth_sigma, bool) or not isinstance(smooth_sigma, (int, float)) or not smooth_sigma >= 0:
            raise ValueError(f"{name}: 'smooth_sigma' must be a number >= 0 (voxels), got {smooth_sigma!r}.")
        if not isinstance(image_key, str) or not isinstance(output_key, str) or not output_key:
            raise ValueError(
                f"{name}: 'image_key' and 'output_key' must be key names, got {image_key!r}, {output_key!r}."
            )
        self.image_key = image_key
        self.output_key = output_key
        self.clusters = int(clusters)
        self.split_background = split_background
        self.smooth_sigma = float(smooth_sigma)

    def sub_label(self, label: int, cluster: int) -> int:
        """The synthesis label of sub-cluster ``cluster`` (0: darkest) of ``label``."""
        if label == 0 and not self.split_background:
            return 0
        first = label * self.clusters if self.split_background else 1 + (label - 1) * self.clusters
        return first + cluster

    def split(self, label: torch.Tensor | np.ndarray, image: torch.Tensor | np.ndarray, key: Hashable = "label"):
        """The synthesis label map of ``label`` (1, *spatial) by the intensities of ``image`` (C, *spatial)."""
        name = type(self).__name__
        labels = _label_map(label, name, key)
        if self.clusters == 1:
            return label.clone() if isinstance(label, torch.Tensor) else np.array(label, copy=True)
        pixels = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
        if pixels.ndim != labels.ndim or pixels.shape[1:] != labels.shape[1:]:
            raise ValueError(
                f"{name}: '{self.image_key}' {tuple(pixels.shape)} and '{key}' {tuple(labels.shape)} must share "
                "their spatial shape."
            )
        intensity = pixels.mean(axis=0, keepdims=True)
        out = np.zeros_like(labels)
        for value in np.unique(labels):
            inside = labels == value
            if value == 0 and not self.split_background:
                continue
            if self.smooth_sigma > 0:  # within the label only: normalised convolution
                weight = inside.astype(np.float32)
                v = _blur(intensity * weight, self.smooth_sigma)[inside] / _blur(weight, self.smooth_sigma)[inside]
            else:
                v = intensity[inside]
            inner = np.quantile(v, np.arange(1, self.clusters) / self.clusters)
            cluster = np.searchsorted(inner, v, side="left")  # ties with a quantile go to the darker sub-label
            out[inside] = self.sub_label(int(value), 0) + cluster
        dtype = torch.uint8 if out.max(initial=0) < 256 else torch.int32
        result, *_ = convert_to_dst_type(out, label, dtype=dtype)
        return result

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        for key in keys:
            if self.image_key not in d:
                raise KeyError(f"{type(self).__name__}: the data has no image '{self.image_key}'.")
            out_key = self.output_key if len(self.keys) == 1 else f"{key}_{self.output_key}"
            d[out_key] = self.split(d[key], d[self.image_key], key)
        return d


class RandPartialVolumed(MapTransform, RandomizableTrait):
    """Partial volume for synthesis: replace a label map by its one-hot maps blurred with a random ``sigma`` (voxels),
    so that TorchIO's ``RandomLabelsToImage`` mixes the intensities of neighbouring labels at their borders, as a
    voxel that straddles two tissues does, before any blur of the image itself.

    Each call draws ``sigma`` uniformly from ``sigma`` (a number ``s``: from ``[0, s]``, TorchIO's convention) with
    torch's global generator, as the TorchIO transforms it precedes do (a random transform to ``CacheDataset``, but
    not ``Randomizable``: it takes no seed from ``Compose``, so adding it leaves the other transforms' seeds as they
    were); the maps are renormalised to sum to 1 in each voxel. Where the blur leaves every value 0 or 1 (``sigma``
    near 0), the label map is returned unchanged (``RandomLabelsToImage`` would read one-hot maps of a single slice
    as labels). ``sigma`` 0 (the default) is the identity and draws nothing.

    Args:
        keys: the label map key(s), each (1, *spatial) with non-negative integer labels.
        sigma: the range of the blur, ``(low, high)`` with ``0 <= low <= high``, or ``high``.
        allow_missing_keys: don't raise if a key is missing.

    Returns (``__call__``):
        The dict with each key replaced by ``float32`` maps (L, *spatial), L = the largest label + 1, or left as it
        was.
    """

    def __init__(
        self, keys: KeysCollection, sigma: float | Sequence[float] = 0.0, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        name = type(self).__name__
        bounds = [0.0, sigma] if isinstance(sigma, (int, float)) else list(sigma)
        if (
            isinstance(sigma, bool)
            or len(bounds) != 2
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds)
            or not 0 <= bounds[0] <= bounds[1]
        ):
            raise ValueError(
                f"{name}: 'sigma' must be a number >= 0 or a range (low, high), 0 <= low <= high; got {sigma!r}."
            )
        self.sigma = (float(bounds[0]), float(bounds[1]))
        self._sigma = 0.0

    def randomize(self) -> None:
        """Draw this call's ``sigma`` (nothing is drawn when the range is ``(0, 0)``)."""
        low, high = self.sigma
        self._sigma = low + (high - low) * float(torch.rand(())) if high > 0 else 0.0

    def blur(self, label: torch.Tensor | np.ndarray, sigma: float, key: Hashable = "label"):
        """The blurred one-hot maps of ``label`` (1, *spatial), or ``label`` where the blur changes nothing."""
        if sigma <= 0:
            return label
        labels = _label_map(label, type(self).__name__, key)[0]
        onehot = np.stack([labels == v for v in range(int(labels.max(initial=0)) + 1)]).astype(np.float32)
        maps = _blur(onehot, sigma)
        maps /= np.maximum(maps.sum(axis=0, keepdims=True), 1e-8)
        if np.array_equal(maps, np.round(maps)):
            return label
        result, *_ = convert_to_dst_type(maps, label, dtype=torch.float32)
        return result

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            d[key] = self.blur(d[key], self._sigma, key)
        return d
