"""Benchmark presets: what is pretrained, fine-tuned and evaluated, and every training setting of each run."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METHODS", "PRESETS", "PRETRAININGS", "BenchmarkPreset", "Budget", "Method", "Pretraining"]


@dataclass(frozen=True)
class Pretraining:
    """A pretraining run of the benchmark (one per pretraining seed).

    Attributes:
        name: the run's name.
        mode: the bundle's ``mode``.
        overrides: more bundle config keys (``augment_intensity``, ``synthesize_images``, ...).
        target_unlabeled: also denoise the target site's ``unlabeled`` scans (never its test subjects), with the
            preset's ``unlabeled_weight``.
    """

    name: str
    mode: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    target_unlabeled: bool = False


#: Pretraining runs, by name.
PRETRAININGS: dict[str, Pretraining] = {
    p.name: p
    for p in (
        Pretraining("hybrid", "hybrid"),
        Pretraining("hybrid_target", "hybrid", target_unlabeled=True),
        Pretraining("supervised", "supervised"),
        Pretraining("supervised_aug", "supervised", {"augment_intensity": True}),
        Pretraining("synth", "supervised", {"synthesize_images": True}),
        Pretraining("diffusion", "diffusion"),
        Pretraining("contrastive", "contrastive"),
    )
}


@dataclass(frozen=True)
class Method:
    """A row of the benchmark.

    Attributes:
        name: the row's name.
        pretrain: the pretraining (a key of ``PRETRAININGS``) it is fine-tuned from; ``None``: from scratch.
        long: fine-tuned ``long_factor`` times longer (``scratch_long``).
        semi: semi-supervised fine-tuning (denoising the target's unlabelled scans too).
    """

    name: str
    pretrain: str | None
    long: bool = False
    semi: bool = False


#: Rows of the benchmark, by name.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("hybrid", "hybrid"),
        Method("hybrid_target", "hybrid_target"),
        Method("supervised", "supervised"),
        Method("supervised_aug", "supervised_aug"),
        Method("synth", "synth"),
        Method("diffusion", "diffusion"),
        Method("contrastive", "contrastive"),
        Method("scratch", None),
        Method("scratch_long", None, long=True),
        Method("hybrid_semi", "hybrid", semi=True),
    )
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
    """Everything a benchmark run needs besides the data: each training setting is declared here, nowhere else.

    Attributes:
        name: preset name.
        resolution: phantom base resolution (mm) and resampling spacing.
        roi: 2D crop size.
        channels, attention_levels: the network (every method uses the same one).
        batch_volumes, samples_per_volume: volumes per batch and slices drawn from each.
        pretrain_steps: pretraining steps of every mode.
        finetune_steps: fine-tuning steps of every method; ``scratch_long`` gets ``long_factor`` times.
        finetune_samples_per_volume: slices drawn from each volume when fine-tuning (the oracle too); ``None``:
            ``samples_per_volume``.
        long_factor: the longer schedule of ``scratch_long``.
        oracle_steps: steps of the oracle (every target label, from scratch); ``None``: ``pretrain_steps``, the
            budget a pretraining run gets, so that the oracle is trained far enough to be an upper bound.
        oracle_seeds: seeds of the oracle; ``None``: ``seeds``. A bound, not a row of the comparison: one seed is
            enough where time is short.
        unlabeled_weight: weight of the denoising loss of ``hybrid_semi``.
        budgets: the label budgets.
        seeds: the fine-tuning seeds (each one draws other labelled cases and another initialisation).
        pretrain_seeds: the seeds of the pretraining runs; fine-tuning seed ``s`` starts from pretraining seed
            ``pretrain_seeds[s % len(pretrain_seeds)]``, so the spread over seeds includes pretraining.
        long_control: methods also fine-tuned ``long_factor`` times longer on ``control_budget`` (rows
            ``<method>_long``): a fine-tuning schedule that has converged gains nothing there.
        control_budget: the budget of ``long_control``.
        zero_shot: pretrainings evaluated on the target without fine-tuning (a bound; for ``synth``, a row of its own:
            contrast-agnostic segmentation needs no target labels).
        methods: rows of the table.
        learning_rate: of pretraining.
        finetune_learning_rate: of fine-tuning (every method, the oracle too).
        pretrain_epochs: a pretraining run's steps are split into this many epochs.
        pretrain_val_interval: epochs between source validations of a pretraining run (the validation curve in
            the results shows whether pretraining has levelled off).
        checkpoint_every: steps between the resumable checkpoints of a pretraining run.
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
        default=(
            Budget(1, "slices"),
            Budget(4, "slices"),
            Budget(16, "slices"),
            Budget(1, "scans"),
            Budget(5, "scans"),
        )
    )
    seeds: tuple[int, ...] = (0, 1, 2)
    pretrain_seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = tuple(METHODS)
    long_control: tuple[str, ...] = ()
    control_budget: Budget = Budget(1, "scans")
    zero_shot: tuple[str, ...] = ("hybrid", "supervised", "synth")
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 5e-4
    pretrain_epochs: int = 4
    pretrain_val_interval: int = 4
    checkpoint_every: int = 50
    num_head_channels: int = 32
    norm_num_groups: int = 16
    workers: int = 1

    def __post_init__(self) -> None:
        def fail(arg: str, what: str) -> None:
            raise ValueError(f"BenchmarkPreset '{self.name}': '{arg}' must be {what}, got {getattr(self, arg)!r}.")

        for arg in ("seeds", "budgets", "methods", "pretrain_seeds"):
            if not getattr(self, arg):
                fail(arg, "non-empty")
        unknown = [m for m in (*self.methods, *self.long_control) if m not in METHODS]
        unknown += [p for p in self.zero_shot if p not in PRETRAININGS]
        if unknown:
            raise ValueError(
                f"BenchmarkPreset '{self.name}': unknown methods or pretrainings {unknown}; methods: {list(METHODS)}, "
                f"pretrainings: {list(PRETRAININGS)}."
            )
        if self.finetune_samples_per_volume is not None and self.finetune_samples_per_volume < 1:
            fail("finetune_samples_per_volume", "None or >= 1")
        if self.oracle_seeds is not None and not self.oracle_seeds:
            fail("oracle_seeds", "None (the preset's seeds) or hold at least one seed")
        for arg in (
            "pretrain_steps",
            "finetune_steps",
            "pretrain_epochs",
            "pretrain_val_interval",
            "checkpoint_every",
            "workers",
        ):
            if not isinstance(getattr(self, arg), int) or getattr(self, arg) < 1:
                fail(arg, "a positive integer")
        for arg in ("learning_rate", "finetune_learning_rate"):
            if not getattr(self, arg) > 0:
                fail(arg, "positive")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchmarkPreset:
        """The preset saved in a ``results.json`` (its ``preset`` entry)."""
        fields = dict(data)
        fields["budgets"] = tuple(Budget(**b) for b in fields["budgets"])
        if isinstance(fields.get("control_budget"), Mapping):
            fields["control_budget"] = Budget(**fields["control_budget"])
        for name, value in list(fields.items()):
            if isinstance(value, list):
                fields[name] = tuple(value)
        return cls(**fields)

    @property
    def pretrain_iterations_per_epoch(self) -> int:
        """Steps of each of the ``pretrain_epochs`` epochs of a pretraining run."""
        return max(1, self.pretrain_steps // self.pretrain_epochs)


_SCANS_AND_SLICES = (
    Budget(1, "slices"),
    Budget(4, "slices"),
    Budget(16, "slices"),
    Budget(1, "scans"),
    Budget(5, "scans"),
)
_ROWS = ("hybrid", "hybrid_target", "supervised", "supervised_aug", "synth", "scratch")

_CPU = BenchmarkPreset(
    name="cpu",
    resolution=3.0,
    roi=(64, 64),
    channels=(8, 16, 32, 64),
    attention_levels=(False, False, False, True),
    batch_volumes=2,
    samples_per_volume=4,
    pretrain_steps=600,
    pretrain_epochs=6,
    pretrain_val_interval=1,
    finetune_steps=150,
    finetune_samples_per_volume=2,
    oracle_seeds=(0,),
    budgets=_SCANS_AND_SLICES,
    seeds=(0, 1, 2, 3),
    pretrain_seeds=(0, 1),
    methods=_ROWS,
    long_control=("hybrid", "supervised"),
    zero_shot=("hybrid", "supervised", "supervised_aug", "synth"),
    norm_num_groups=8,
    workers=2,
)

PRESETS: dict[str, BenchmarkPreset] = {
    # 2 cores, under an hour: 3 mm slices, a narrow 4-level network (attention at the 8 x 8 level only), two
    # one-thread runs at a time; two pretraining seeds, validated every 100 steps; four fine-tuning seeds (two per
    # pretraining seed); fine-tuning 150 steps, with a 3x longer control for hybrid and supervised
    # (docs/results.md gives the time measured)
    "cpu": _CPU,
    # the cpu preset on tiny budgets, a smoke run of every kind of step: 2 min 34 s on 2 cores (docs/results.md); its
    # numbers mean nothing
    "quick": dataclasses.replace(
        _CPU,
        name="quick",
        samples_per_volume=2,
        pretrain_steps=60,
        pretrain_epochs=2,
        finetune_steps=20,
        budgets=(Budget(1, "slices"), Budget(1, "scans")),
        seeds=(0,),
        pretrain_seeds=(0,),
        methods=("hybrid", "hybrid_target", "supervised", "synth", "scratch"),
        long_control=("hybrid",),
        zero_shot=("hybrid", "synth"),
    ),
    # a GPU: 2 mm slices, the bundle's network width doubled, 3 pretraining and 6 fine-tuning seeds, every row
    "full": BenchmarkPreset(
        name="full",
        resolution=2.0,
        roi=(96, 96),
        channels=(32, 64, 128, 128),
        attention_levels=(False, False, False, True),
        batch_volumes=4,
        samples_per_volume=8,
        pretrain_steps=5000,
        pretrain_epochs=10,
        pretrain_val_interval=1,
        finetune_steps=500,
        budgets=(
            Budget(1, "slices"),
            Budget(4, "slices"),
            Budget(16, "slices"),
            Budget(1, "scans"),
            Budget(5, "scans"),
        ),
        seeds=(0, 1, 2, 3, 4, 5),
        pretrain_seeds=(0, 1, 2),
        methods=(*_ROWS, "diffusion", "contrastive", "scratch_long", "hybrid_semi"),
        long_control=("hybrid", "supervised"),
        zero_shot=("hybrid", "supervised", "supervised_aug", "synth"),
    ),
}
