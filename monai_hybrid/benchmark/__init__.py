"""The label-efficiency benchmark (``monai-hybrid benchmark``): presets, plan, runs, executor, result store, report."""

from monai_hybrid.benchmark.data import BenchmarkData, prepare_data
from monai_hybrid.benchmark.figures import plot_dice
from monai_hybrid.benchmark.lesion_report import write_lesion_report
from monai_hybrid.benchmark.plan import (
    ABLATIONS,
    FINETUNE_TUNING,
    FinetuneStep,
    PretrainStep,
    ZeroShotStep,
    plan_ablations,
    plan_grid,
)
from monai_hybrid.benchmark.presets import PRESETS, BenchmarkPreset, Budget, GridPart, bundle_preset
from monai_hybrid.benchmark.report import (
    TUNING_REPORTS,
    write_ablations_report,
    write_grid_report,
    write_results_report,
    write_tuning_report,
)
from monai_hybrid.benchmark.rows import METHODS, PRETRAININGS, Method, Pretraining
from monai_hybrid.benchmark.runner import BenchmarkRunner
from monai_hybrid.benchmark.runs import RunContext
from monai_hybrid.benchmark.stats import summarise
from monai_hybrid.benchmark.store import RESULTS_FILE, MlflowSink, ResultStore
from monai_hybrid.benchmark.tables import markdown_table, paired_table
from monai_hybrid.benchmark.tuning import TUNING, plan_finetune_tuning, plan_tuning

__all__ = [
    "ABLATIONS",
    "FINETUNE_TUNING",
    "TUNING",
    "TUNING_REPORTS",
    "plan_tuning",
    "METHODS",
    "PRESETS",
    "PRETRAININGS",
    "RESULTS_FILE",
    "BenchmarkData",
    "BenchmarkPreset",
    "BenchmarkRunner",
    "Budget",
    "FinetuneStep",
    "GridPart",
    "Method",
    "MlflowSink",
    "PretrainStep",
    "Pretraining",
    "ResultStore",
    "RunContext",
    "ZeroShotStep",
    "bundle_preset",
    "markdown_table",
    "paired_table",
    "plan_ablations",
    "plan_finetune_tuning",
    "plan_grid",
    "plot_dice",
    "prepare_data",
    "summarise",
    "write_ablations_report",
    "write_grid_report",
    "write_lesion_report",
    "write_results_report",
    "write_tuning_report",
]
