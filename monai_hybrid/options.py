"""The choices of the package's settings: one ``StrEnum`` per option, declared here once.

Each option is checked once, by the object or function that owns the setting, with MONAI's ``look_up_option``
(``choose``), whose message offers the nearest valid value ("did you mean ..."); the owner and the argument are named
before it.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from monai.utils import StrEnum, look_up_option

__all__ = [
    "BundleRun",
    "LabelUnit",
    "MaskWeighting",
    "NetworkOutput",
    "Overlay",
    "Orientation",
    "SiteRole",
    "Precision",
    "PredictionType",
    "RunKind",
    "TimestepDistribution",
    "Trainable",
    "check_spatial_dims",
    "choose",
]

E = TypeVar("E", bound=Enum)


class PredictionType(StrEnum):
    """What the image head predicts: the clean image, the noise, or the velocity (Salimans & Ho 2022)."""

    SAMPLE = "sample"
    EPSILON = "epsilon"
    V_PREDICTION = "v_prediction"


class TimestepDistribution(StrEnum):
    """How the noise levels of hybrid pretraining are drawn (``engines.noise_levels.TimestepSampler``)."""

    UNIFORM = "uniform"
    TRUNCATED = "truncated"
    LOGNORMAL = "lognormal"


class MaskWeighting(StrEnum):
    """Per-sample weight of the mask loss: none, or ``alpha_bar_t`` (the signal share at the noise level)."""

    NONE = "none"
    ALPHA_BAR = "alpha_bar"


class LabelUnit(StrEnum):
    """What a label budget counts: whole scans or single axial slices."""

    SCANS = "scans"
    SLICES = "slices"


class NetworkOutput(StrEnum):
    """What ``HybridDiffusionUNet.forward`` returns."""

    ALL = "all"
    IMAGE = "image"
    MASK = "mask"
    FEATURES = "features"
    PROJECTION = "projection"


class BundleRun(StrEnum):
    """The runs of the bundle (``python -m monai.bundle run RUN``); ``monai_hybrid.stacks.RUNS`` gives their files."""

    PRETRAIN = "pretrain"
    FINETUNE = "finetune"
    FINETUNE_WITH_SAMPLES = "finetune_with_samples"
    SAMPLE = "sample"
    INFERENCE = "inference"
    EVALUATE = "evaluate"


class Overlay(StrEnum):
    """The bundle's overlays (``monai-hybrid configs RUN OVERLAY ...``), in the order they compose;
    ``monai_hybrid.stacks.OVERLAYS`` gives their files and runs."""

    INTENSITY_AUGMENTATION = "intensity_augmentation"
    SYNTHESIS = "synthesis"
    UNLABELED = "unlabeled"
    STAGED_FINETUNING = "staged_finetuning"
    PSEUDO_LABELS = "pseudo_labels"
    MULTI_GPU = "multi_gpu"
    THREE_D = "3d"
    CLASS_BALANCED = "class_balanced"


class SiteRole(StrEnum):
    """What a phantom site is for: the labelled source of pretraining, or a target to adapt to."""

    SOURCE = "source"
    TARGET = "target"


class Orientation(StrEnum):
    """The axis codes a phantom site writes its scans in."""

    RAS = "RAS"
    LPS = "LPS"


class Trainable(StrEnum):
    """The parameters that train before staged fine-tuning's ``unfreeze_at`` (``engines.StagedFineTuning``)."""

    ALL = "all"
    HEAD = "head"  # the mask head
    INPUT_NORM = "input_norm"  # first convolution, first encoder level, every normalisation layer, the mask head


class RunKind(StrEnum):
    """What a benchmark record is: a pretraining, a fine-tuning (scored on the target) or a bound without
    fine-tuning (the zero-shot and oracle bounds)."""

    PRETRAIN = "pretrain"
    FINETUNE = "finetune"
    BOUND = "bound"


class Precision(StrEnum):
    """The arithmetic of a run's forward passes (``engines.precision.resolve_precision`` picks one from ``amp``).

    * ``float32``: everything in float32;
    * ``cuda_amp``: MONAI's own automatic mixed precision on a GPU (float16 autocast and a gradient scaler inside
      ``SupervisedTrainer`` and ``SupervisedEvaluator``);
    * ``cpu_bfloat16``: on a CPU, the forward pass autocast to bfloat16 (``engines.precision.AutocastInferer``);
      losses, gradients and the optimiser stay float32.
    """

    FLOAT32 = "float32"
    CUDA_AMP = "cuda_amp"
    CPU_BFLOAT16 = "cpu_bfloat16"


def check_spatial_dims(value: object, owner: str) -> int:
    """``value`` as the spatial dimensions of a network or run: 2 or 3.

    Raises:
        ValueError: naming ``owner`` and ``spatial_dims``, for anything else.
    """
    if isinstance(value, bool) or value not in (2, 3):
        raise ValueError(f"{owner}: 'spatial_dims' must be 2 or 3, got {value!r}.")
    return int(value)


def choose(value: object, option: type[E], owner: str, argument: str) -> E:
    """``value`` as a member of ``option`` (MONAI's ``look_up_option``).

    Raises:
        ValueError: naming ``owner`` and ``argument``, then MONAI's message with the valid values.
    """
    try:
        return look_up_option(value, option)
    except ValueError as err:
        raise ValueError(f"{owner}: '{argument}' got {value!r}. {err}".rstrip()) from None
