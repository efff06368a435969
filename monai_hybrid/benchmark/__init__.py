"""The label-efficiency benchmark (``monai-hybrid benchmark``)."""

from monai_hybrid.benchmark.presets import METHODS, PRESETS, BenchmarkPreset, Budget
from monai_hybrid.benchmark.report import markdown_table, plot_dice, summarise
from monai_hybrid.benchmark.runner import ABLATIONS, RESULTS_FILE, BenchmarkRunner, default_bundle_dir

__all__ = [
    "ABLATIONS",
    "BenchmarkPreset",
    "BenchmarkRunner",
    "Budget",
    "METHODS",
    "PRESETS",
    "RESULTS_FILE",
    "default_bundle_dir",
    "markdown_table",
    "plot_dice",
    "summarise",
]
