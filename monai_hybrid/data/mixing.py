"""Mixing sampled image-mask pairs into the few labelled target cases of a fine-tuning run.

The ``sample`` run writes pairs as volumes of one axial slice with a datalist; fine-tuning can add them to its
labelled cases. So that a handful of real scans is not drowned by many synthetic pairs, training draws come from
the sampled pairs with a fixed probability ``sampled_share`` (a weighted sampler), whatever their count.
"""

from __future__ import annotations

__all__ = ["add_sampled_pairs", "mixing_weights"]


def add_sampled_pairs(labelled: list[dict], sampled: list[dict]) -> list[dict]:
    """The labelled cases followed by the sampled pairs, with the keys of the labelled cases.

    When the labelled cases are single slices (``slice_z_mm``), each pair gets ``slice_z_mm: 0.0``: a pair holds
    one slice, which ``SelectSliced`` keeps whatever the height, and every case of a batch must have the same keys.

    Args:
        labelled: cases from ``select_labeled``.
        sampled: entries of the pairs' datalist (``load_list(path, 'training')``), with ``image`` and ``label``.

    Raises:
        ValueError: a sampled entry without ``image`` or ``label``.
    """
    for i, entry in enumerate(sampled):
        if not isinstance(entry, dict) or not entry.get("image") or not entry.get("label"):
            raise ValueError(
                f"add_sampled_pairs: sampled entry {i} needs 'image' and 'label', got {entry!r}; use the "
                "datalist.json written by the bundle's 'sample' run."
            )
    slices = any("slice_z_mm" in c for c in labelled)
    pairs = [{"image": e["image"], "label": e["label"], **({"slice_z_mm": 0.0} if slices else {})} for e in sampled]
    return list(labelled) + pairs


def mixing_weights(num_labelled: int, num_sampled: int, sampled_share: float) -> list[float]:
    """Sampling weights: the ``num_sampled`` pairs together get ``sampled_share`` of the draws.

    Args:
        num_labelled: labelled cases (first in the list).
        num_sampled: sampled pairs (after them).
        sampled_share: probability that a draw is a sampled pair, in ``[0, 1)``; ignored without pairs.

    Returns:
        One weight per case; uniform when there are no pairs.

    Raises:
        ValueError: no labelled case, or ``sampled_share`` outside ``[0, 1)``.
    """
    if num_labelled < 1:
        raise ValueError(f"mixing_weights: 'num_labelled' must be >= 1, got {num_labelled}.")
    if num_sampled < 0:
        raise ValueError(f"mixing_weights: 'num_sampled' must be >= 0, got {num_sampled}.")
    if not num_sampled:
        return [1.0] * num_labelled
    if not 0.0 <= float(sampled_share) < 1.0:
        raise ValueError(f"mixing_weights: 'sampled_share' must be in [0, 1), got {sampled_share!r}.")
    real = (1.0 - sampled_share) / num_labelled
    return [real] * num_labelled + [sampled_share / num_sampled] * num_sampled
