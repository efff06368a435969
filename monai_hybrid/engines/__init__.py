"""Extension points for MONAI's stock Ignite engines: prepare-batch, inferers, handlers, checkpoints."""

from monai_hybrid.engines.checkpoint import AtomicCheckpointSaver, VerifiedCheckpointLoader, load_checkpoint
from monai_hybrid.engines.denoising import DenoisingErrorHandler, predict_x0
from monai_hybrid.engines.evaluation import EvaluationReport
from monai_hybrid.engines.handlers import (
    LossTermsHandler,
    TrackingParamsHandler,
    TrainingProgressBar,
    every,
    loss_terms,
)
from monai_hybrid.engines.inferers import MaskInferer
from monai_hybrid.engines.prepare_batch import PREDICTION_TYPES, HybridPrepareBatch, SemiSupervisedPrepareBatch

__all__ = [
    "AtomicCheckpointSaver",
    "DenoisingErrorHandler",
    "EvaluationReport",
    "HybridPrepareBatch",
    "LossTermsHandler",
    "MaskInferer",
    "PREDICTION_TYPES",
    "VerifiedCheckpointLoader",
    "SemiSupervisedPrepareBatch",
    "TrackingParamsHandler",
    "TrainingProgressBar",
    "every",
    "load_checkpoint",
    "loss_terms",
    "predict_x0",
]
