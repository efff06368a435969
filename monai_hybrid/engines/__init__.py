"""Extension points for MONAI's stock Ignite engines: prepare-batch, inferers, handlers, checkpoints."""

from monai_hybrid.engines.checkpoint import (
    AtomicCheckpointSaver,
    PretrainedWeightsHandler,
    VerifiedCheckpointLoader,
    load_checkpoint,
)
from monai_hybrid.engines.denoising import DenoisingErrorHandler, predict_x0
from monai_hybrid.engines.evaluation import EvaluationReport
from monai_hybrid.engines.handlers import (
    GuardedMLFlowHandler,
    LossTermsHandler,
    MetricsHistory,
    ModelSettingsWriter,
    TrackingGuard,
    TrainingProgressBar,
    every,
    loss_terms,
)
from monai_hybrid.engines.inferers import MaskInferer, window_inferer
from monai_hybrid.engines.noise_levels import TimestepSampler, mask_weights
from monai_hybrid.engines.precision import AutocastInferer, cpu_bfloat16_flags, resolve_precision, with_precision
from monai_hybrid.engines.prepare_batch import (
    HybridPrepareBatch,
    finetuning_prepare_batch,
)
from monai_hybrid.engines.pseudo_labels import PseudoLabeler
from monai_hybrid.engines.staged import StagedFineTuning, Trainable, trainable_parameters

__all__ = [
    "AtomicCheckpointSaver",
    "AutocastInferer",
    "DenoisingErrorHandler",
    "EvaluationReport",
    "GuardedMLFlowHandler",
    "HybridPrepareBatch",
    "LossTermsHandler",
    "MaskInferer",
    "MetricsHistory",
    "ModelSettingsWriter",
    "PretrainedWeightsHandler",
    "PseudoLabeler",
    "StagedFineTuning",
    "VerifiedCheckpointLoader",
    "TimestepSampler",
    "TrackingGuard",
    "TrainingProgressBar",
    "Trainable",
    "cpu_bfloat16_flags",
    "every",
    "finetuning_prepare_batch",
    "load_checkpoint",
    "loss_terms",
    "mask_weights",
    "predict_x0",
    "resolve_precision",
    "trainable_parameters",
    "window_inferer",
    "with_precision",
]
