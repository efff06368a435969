"""The config files each run of the bundle composes, and the overlays a user may add: one place, so that the long
``--config_file "['configs/common.yaml', ...]"`` list is written by ``monai-hybrid configs`` rather than by hand.

A run's stack is its base configs, then the overlays the user names, in the order declared here (``3d`` after the
augmentations: it replaces the crop and spatial settings they leave alone; ``class_balanced`` after ``3d``: it
replaces the first crop transform of either)::

    python -m monai.bundle run pretrain --config_file "$(monai-hybrid configs pretrain synthesis)"
"""

from __future__ import annotations

from collections.abc import Iterable

from monai_hybrid.options import BundleRun, Overlay, choose

__all__ = ["OVERLAYS", "REQUIRES", "RUNS", "config_file_arg", "config_stack"]

#: Run id -> the config files it composes (in the bundle's ``configs/``), in order.
RUNS: dict[str, tuple[str, ...]] = {
    "pretrain": ("common.yaml", "pretrain.yaml"),
    "finetune": ("common.yaml", "pretrain.yaml", "finetune.yaml"),
    "finetune_with_samples": ("common.yaml", "pretrain.yaml", "finetune.yaml", "finetune_with_samples.yaml"),
    "sample": ("common.yaml", "pretrain.yaml", "sample.yaml"),
    "inference": ("inference.yaml",),
    "evaluate": ("inference.yaml", "evaluate.yaml"),
}

#: Overlay name -> (its config file, the runs it applies to), in the order they are composed.
OVERLAYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "intensity_augmentation": ("intensity_augmentation.yaml", ("pretrain", "finetune", "finetune_with_samples")),
    "synthesis": ("synthesis.yaml", ("pretrain", "finetune", "finetune_with_samples")),
    "unlabeled": ("unlabeled.yaml", ("pretrain", "finetune", "finetune_with_samples")),
    "staged_finetuning": ("staged_finetuning.yaml", ("finetune", "finetune_with_samples")),
    # after unlabeled, whose scans it labels
    "pseudo_labels": ("pseudo_labels.yaml", ("finetune", "finetune_with_samples")),
    "multi_gpu": ("multi_gpu_train.yaml", ("pretrain", "finetune")),
    "3d": ("3d.yaml", ("pretrain", "finetune", "finetune_with_samples", "sample")),
    # after 3d: it replaces the first crop transform, of slices or of patches
    "class_balanced": ("class_balanced.yaml", ("pretrain", "finetune", "finetune_with_samples")),
}

#: Overlay name -> the overlays it builds on, which must be named with it.
REQUIRES: dict[str, tuple[str, ...]] = {"pseudo_labels": ("unlabeled",)}


def config_stack(run: str, overlays: Iterable[str] = ()) -> list[str]:
    """The config files of ``run`` with ``overlays`` added, in composition order.

    Args:
        run: a key of ``RUNS``.
        overlays: keys of ``OVERLAYS``, in any order (each at most once).

    Returns:
        File names in the bundle's ``configs/``.

    Raises:
        ValueError: an unknown run or overlay, an overlay named twice, one that does not apply to ``run``, or one
            named without an overlay it builds on (``REQUIRES``).
    """
    run = str(choose(run, BundleRun, "config_stack", "run"))  # plain strings: messages and file lists show values
    names = [str(choose(o, Overlay, "config_stack", "overlays")) for o in overlays]
    if len(set(names)) != len(names):
        raise ValueError(f"config_stack: 'overlays' {names} names an overlay twice.")
    misplaced = [o for o in names if run not in OVERLAYS[o][1]]
    if misplaced:
        raise ValueError(
            f"config_stack: overlay(s) {misplaced} do not apply to {run!r}; "
            + "; ".join(f"{o} applies to {list(OVERLAYS[o][1])}" for o in misplaced)
            + "."
        )
    missing = {o: [r for r in REQUIRES.get(o, ()) if r not in names] for o in names}
    missing = {o: needs for o, needs in missing.items() if needs}
    if missing:
        fixed = sorted({*names, *(r for needs in missing.values() for r in needs)}, key=list(OVERLAYS).index)
        raise ValueError(
            "config_stack: "
            + "; ".join(f"overlay {o!r} builds on {needs}: name them too" for o, needs in missing.items())
            + f" (monai-hybrid configs {run} {' '.join(fixed)})."
        )
    return [*RUNS[run], *(OVERLAYS[o][0] for o in OVERLAYS if o in names)]


def config_file_arg(run: str, overlays: Iterable[str] = ()) -> str:
    """The ``--config_file`` value of ``python -m monai.bundle run`` for ``run`` with ``overlays``, from inside a
    bundle folder: ``"['configs/common.yaml','configs/pretrain.yaml']"`` without the outer quotes."""
    return "[" + ",".join(f"'configs/{name}'" for name in config_stack(run, overlays)) + "]"
