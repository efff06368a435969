"""Benchmark presets: what is pretrained, fine-tuned and evaluated, and how long each run is."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Budget", "BenchmarkPreset", "PRESETS", "METHODS"]

#: Rows of the benchmark. ``pretrain`` is the pretraining mode fine-tuned from (``None``: from scratch).
METHODS: dict[str, dict] = {
    "hybrid": {"pretrain": "hybrid"},
    "supervised": {"pretrain": "supervised"},
    "diffusion": {"pretrain": "diffusion"},
    "contrastive": {"pretrain": "contrastive"},
    "scratch": {"pretrain": None},
    "scratch_long": {"pretrain": None, "long": True},
    "hybrid_semi": {"pretrain": "hybrid", "semi": True},
}


@dataclass(frozen=True)
class Budget:
    """A label budget: ``k`` labelled ``unit`` (``slices`` or ``scans``)."""

    k: int
    unit: str

    @property
    def name(self) -> str:
        return f"{self.k} {self.unit[:-1] if self.k == 1 else self.unit}"

    @property
    def key(self) -> str:
        return f"{self.unit}{self.k}"


@dataclass(frozen=True)
class BenchmarkPreset:
    """Everything a benchmark run needs besides the data.

    Attributes:
        name: preset name.
        resolution: phantom base resolution (mm) and resampling spacing.
        roi: 2D crop size.
        channels, attention_levels: the network (every method uses the same one).
        batch_volumes, samples_per_volume: volumes per batch and slices drawn from each.
        finetune_samples_per_volume: slices drawn from each volume when fine-tuning (the oracle too); ``None``:
            ``samples_per_volume``.
        pretrain_steps: pretraining steps of every mode.
        finetune_steps: fine-tuning steps of every method; ``scratch_long`` gets ``long_factor`` times.
        long_factor: the longer schedule of ``scratch_long``.
        oracle_steps: steps of the oracle (every target label, from scratch); ``None``: ``pretrain_steps``, the
            budget a pretraining run gets, so that the oracle is trained far enough to be an upper bound.
        oracle_seeds: seeds of the oracle; ``None``: ``seeds``. A bound, not a row of the comparison: one seed is
            enough where time is short.
        unlabeled_weight: weight of the denoising loss of ``hybrid_semi``.
        budgets: the label budgets.
        seeds: the seeds (each one draws other labelled cases and another initialisation).
        methods: rows of the table.
        learning_rate: of pretraining; fine-tuning uses half of it.
        num_head_channels, norm_num_groups: of the network.
        workers: runs executed at once (``BenchmarkRunner``'s ``workers``).
    """

    name: str
    resolution: float
    roi: tuple[int, int]
    channels: tuple[int, ...]
    attention_levels: tuple[bool, ...]
    batch_volumes: int
    samples_per_volume: int
    pretrain_steps: int
    finetune_steps: int
    finetune_samples_per_volume: int | None = None
    long_factor: int = 3
    oracle_steps: int | None = None
    oracle_seeds: tuple[int, ...] | None = None
    unlabeled_weight: float = 0.5
    budgets: tuple[Budget, ...] = field(
        default=(Budget(1, "slices"), Budget(4, "slices"), Budget(16, "slices"), Budget(1, "scans"), Budget(5, "scans"))
    )
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = tuple(METHODS)
    learning_rate: float = 1e-3
    num_head_channels: int = 32
    norm_num_groups: int = 16
    workers: int = 1

    def __post_init__(self) -> None:
        for arg in ("seeds", "budgets", "methods"):
            if not getattr(self, arg):
                raise ValueError(f"BenchmarkPreset '{self.name}': '{arg}' must not be empty.")
        if self.finetune_samples_per_volume is not None and self.finetune_samples_per_volume < 1:
            raise ValueError(
                f"BenchmarkPreset '{self.name}': 'finetune_samples_per_volume' must be None or >= 1, got "
                f"{self.finetune_samples_per_volume}."
            )
        if self.oracle_seeds is not None and not self.oracle_seeds:
            raise ValueError(
                f"BenchmarkPreset '{self.name}': 'oracle_seeds' must be None (the preset's seeds) or "
                "hold at least one seed."
            )


PRESETS: dict[str, BenchmarkPreset] = {
    # 2 cores, under 30 minutes: 3 mm slices, a narrow 4-level network (attention at the 8 x 8 level only), two
    # one-thread runs at a time, fine-tuning batches of 2 x 2 slices, a one-seed oracle (docs/results.md gives the
    # time measured)
    "cpu": BenchmarkPreset(
        name="cpu",
        resolution=3.0,
        roi=(64, 64),
        channels=(8, 16, 32, 64),
        attention_levels=(False, False, False, True),
        batch_volumes=2,
        samples_per_volume=4,
        pretrain_steps=400,
        finetune_steps=50,
        finetune_samples_per_volume=2,
        oracle_seeds=(0,),
        norm_num_groups=8,
        workers=2,
    ),
    "full": BenchmarkPreset(
        name="full",
        resolution=2.0,
        roi=(96, 96),
        channels=(32, 64, 128, 128),
        attention_levels=(False, False, False, True),
        batch_volumes=4,
        samples_per_volume=8,
        pretrain_steps=5000,
        finetune_steps=500,
        seeds=(0, 1, 2, 3, 4),
    ),
}
