"""Benchmark presets: what is pretrained, fine-tuned and evaluated, and every training setting of each run."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monai_hybrid.benchmark.rows import (
    METHODS,
    PRETRAININGS,
)
from monai_hybrid.benchmark.shipped import shipped_settings

__all__ = [
    "PRESETS",
    "BenchmarkPreset",
    "Budget",
    "GridPart",
    "bundle_preset",
    "compute_point",
]


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
class GridPart:
    """A part of the grid: ``methods`` fine-tuned on each of ``budgets`` at each target site of ``sites``, once per
    fine-tuning seed of ``seeds``. Parts share the pretraining runs; a fine-tuning run that two parts name runs once.

    Attributes:
        name: names the part (``monai-hybrid benchmark --parts``).
        sites: target sites (phantom site names; ``target`` for a user's target datalist).
        budgets: label budgets.
        methods: rows (keys of ``METHODS``).
        seeds: fine-tuning seeds.
        pretrain_seeds: the pretraining seeds of this part's rows (``None``: the preset's): fine-tuning seed ``s``
            starts from ``pretrain_seeds[s % len(pretrain_seeds)]``. More pretraining seeds than the preset's add
            independent replicates without changing the runs already made (the pretraining runs of the preset's
            seeds are shared); the part's fine-tuning seeds must then differ from those of the other parts' rows.
    """

    name: str
    sites: tuple[str, ...]
    budgets: tuple[Budget, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    pretrain_seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for arg in ("sites", "budgets", "methods", "seeds"):
            if not getattr(self, arg):
                raise ValueError(f"GridPart '{self.name}': '{arg}' must be non-empty.")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"GridPart '{self.name}': unknown methods {unknown}; known: {list(METHODS)}.")
        if any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"GridPart '{self.name}': 'seeds' must be non-negative integers, got {self.seeds}.")
        if self.pretrain_seeds is not None and (
            not self.pretrain_seeds or any(not isinstance(s, int) or s < 0 for s in self.pretrain_seeds)
        ):
            raise ValueError(
                f"GridPart '{self.name}': 'pretrain_seeds' must be None or non-negative integers, got "
                f"{self.pretrain_seeds}."
            )


def rate_label(rate: float) -> str:
    """A learning rate as the tuning names it: ``5e-4``, ``2e-3``, ``1.5e-3``."""
    mantissa, exponent = f"{rate:.6e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


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
        budgets: the label budgets of the main part of the grid.
        seeds: the fine-tuning seeds of the main part (seed ``s`` labels block ``s`` of each budget's fixed
            permutation of the target's training cases, so seeds label *other* cases, and starts from another
            initialisation).
        target_sites: the target sites of the main part (phantom site names).
        parts: more parts of the grid (other sites, budgets, rows or seeds), sharing the pretraining runs.
        reference: the default recipe: the row every other row is compared with (paired differences, verdicts).
        fresh_seed: phantom seed of a fresh test cohort that no development run has seen: every fine-tuned model is
            also scored on the test subjects of that phantom's site (``None``: no fresh cohort).
        pretrain_seeds: the seeds of the pretraining runs; fine-tuning seed ``s`` starts from pretraining seed
            ``pretrain_seeds[s % len(pretrain_seeds)]``, so the spread over seeds includes pretraining (and the
            report's intervals treat the pretraining seed as the unit of replication).
        long_control: methods also fine-tuned ``long_factor`` times longer on ``control_budget`` at the first target
            site (rows ``<method>_long``): a fine-tuning schedule that has converged gains nothing there.
        control_budget: the budget of ``long_control``.
        zero_shot: pretrainings evaluated on the target without fine-tuning (a bound; for ``synth``, a row of its own:
            contrast-agnostic segmentation needs no target labels).
        methods: rows of the table.
        learning_rate: of pretraining.
        pretrain_learning_rates: ``(pretraining, learning rate)`` pairs where equal-care tuning chose another
            pretraining learning rate than ``learning_rate`` for that pretraining (``tuning.TUNING``); its runs are
            called ``<pretraining>_lr<rate>_seed<p>``.
        finetune_learning_rate: of fine-tuning (every method, the oracle too).
        pretrain_epochs: a pretraining run's steps are split into this many epochs.
        pretrain_val_interval: epochs between source validations of a pretraining run (the validation curve in
            the results shows whether pretraining has levelled off).
        checkpoint_every: steps between the resumable checkpoints of a pretraining run.
        num_head_channels, norm_num_groups: of the network.
        workers: runs executed at once (``BenchmarkRunner``'s ``workers``).
        amp: the bundle's ``amp`` setting for every run (``auto``, ``true``, ``false``): ``false`` keeps every run in
            float32, as the stored results of the cpu and full presets were measured; ``auto`` trains and scores
            in bfloat16 on a CPU with native bfloat16 instructions, as the bundle does by default and the bundle
            preset therefore does (docs/pretraining.md "Speed").
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
    target_sites: tuple[str, ...] = ("site_c_flair",)
    parts: tuple[GridPart, ...] = ()
    reference: str = "hybrid"
    fresh_seed: int | None = None
    pretrain_seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = tuple(METHODS)
    long_control: tuple[str, ...] = ()
    control_budget: Budget = Budget(1, "scans")
    zero_shot: tuple[str, ...] = ("hybrid", "supervised", "synth")
    learning_rate: float = 1e-3
    pretrain_learning_rates: tuple[tuple[str, float], ...] = ()
    finetune_learning_rate: float = 5e-4
    pretrain_epochs: int = 4
    pretrain_val_interval: int = 4
    checkpoint_every: int = 50
    num_head_channels: int = 32
    norm_num_groups: int = 16
    workers: int = 1
    amp: str = "false"

    def __post_init__(self) -> None:
        def fail(arg: str, what: str) -> None:
            raise ValueError(f"BenchmarkPreset '{self.name}': '{arg}' must be {what}, got {getattr(self, arg)!r}.")

        for arg in ("seeds", "budgets", "methods", "pretrain_seeds", "target_sites"):
            if not getattr(self, arg):
                fail(arg, "non-empty")
        if self.reference not in METHODS:
            fail("reference", f"one of {list(METHODS)}")
        if self.fresh_seed is not None and (not isinstance(self.fresh_seed, int) or self.fresh_seed < 0):
            fail("fresh_seed", "None or a non-negative integer")
        names = [part.name for part in self.grid_parts]
        if len(set(names)) != len(names):
            fail("parts", f"named uniquely (and not 'main'); names {names}")
        clash = [m for m in self.long_control if f"{m}_long" in METHODS]
        if clash:
            fail("long_control", f"free of rows whose control '<row>_long' is a row of its own ({clash})")
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
        pairs = self.pretrain_learning_rates
        if not all(isinstance(p, tuple) and len(p) == 2 and p[0] in PRETRAININGS and p[1] > 0 for p in pairs):
            fail("pretrain_learning_rates", f"(pretraining, positive rate) pairs, pretrainings in {list(PRETRAININGS)}")
        if len({name for name, _ in pairs}) != len(pairs):
            fail("pretrain_learning_rates", "one pair per pretraining")

    def pretrain_learning_rate(self, pretraining: str) -> float:
        """The pretraining learning rate of ``pretraining`` (a name of ``PRETRAININGS``)."""
        return dict(self.pretrain_learning_rates).get(pretraining, self.learning_rate)

    def pretrain_run_name(self, pretraining: str) -> str:
        """The name of ``pretraining``'s runs (without the seed): the pretraining's name, with its learning rate
        where it has its own (``synth_lr5e-4``), so that runs at two rates never share a folder or a record."""
        if pretraining not in dict(self.pretrain_learning_rates):
            return pretraining
        return f"{pretraining}_lr{rate_label(self.pretrain_learning_rate(pretraining))}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchmarkPreset:
        """The preset saved in a ``results.json`` (its ``preset`` entry)."""
        fields = dict(data)
        fields["budgets"] = tuple(Budget(**b) for b in fields["budgets"])
        if isinstance(fields.get("control_budget"), Mapping):
            fields["control_budget"] = Budget(**fields["control_budget"])
        fields["parts"] = tuple(
            GridPart(
                part["name"],
                tuple(part["sites"]),
                tuple(Budget(**b) for b in part["budgets"]),
                tuple(part["methods"]),
                tuple(part["seeds"]),
                tuple(part["pretrain_seeds"]) if part.get("pretrain_seeds") is not None else None,
            )
            for part in data.get("parts", ())
        )
        for name, value in list(fields.items()):
            if isinstance(value, list):
                fields[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        return cls(**fields)

    def run_settings(self) -> dict[str, Any]:
        """The settings that change what a recorded run did (a results folder resumed with other values would mix
        runs of two protocols): every field but the ones that only choose *which* runs there are, and ``workers``."""
        # a pretraining's own learning rate is in its runs' names, and every fine-tuning records the pretraining run it
        # started from, which the runner checks on resume: a row given its own rate later is resumable
        which = {
            "pretrain_learning_rates",
            "name",
            "workers",
            "budgets",
            "seeds",
            "target_sites",
            "parts",
            "reference",
            "methods",
            "long_control",
            "control_budget",
            "zero_shot",
            "oracle_seeds",
        }
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in which}

    @property
    def grid_parts(self) -> tuple[GridPart, ...]:
        """The main part (``target_sites`` x ``budgets`` x ``methods`` x ``seeds``), then ``parts``."""
        main = GridPart("main", self.target_sites, self.budgets, self.methods, self.seeds)
        return (main, *self.parts)

    def part(self, name: str) -> GridPart:
        """The grid part called ``name``."""
        for part in self.grid_parts:
            if part.name == name:
                return part
        raise KeyError(
            f"Preset '{self.name}' has no grid part {name!r}; its parts: {[p.name for p in self.grid_parts]}."
        )

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
_SCARCE = (Budget(1, "slices"), Budget(4, "slices"), Budget(1, "scans"))
_ROWS = ("hybrid", "hybrid_target", "supervised", "supervised_aug", "synth", "scratch")
_KEY_ROWS = ("hybrid", "supervised_aug")
_CPU_ROWS = ("hybrid", "supervised", "supervised_aug", "synth", "scratch")
_SYNTH_ROWS = ("hybrid_synth", "supervised_synth")
_TARGETS = ("site_c_flair", "site_b_t2w", "site_d_pd")
_LESION_BUDGETS = (Budget(1, "scans"), Budget(3, "scans"), Budget(5, "scans"))
_LESION_ROWS = ("hybrid", "supervised_aug", "synth", "scratch")
#: The fresh test cohort's phantom seed: never used by a development run (they all used seed 0).
FRESH_SEED = 20261130

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
    # chosen on validation subjects by both key rows (equal-care tuning, docs/results/tuning_cpu.md): the largest of
    # the three rates tried, so a larger one may be better still
    learning_rate=2e-3,
    # synth, hybrid_synth and supervised_synth chose 5e-4 in the same tuning (docs/results/tuning_cpu.md): every row
    # runs at its own choice
    pretrain_learning_rates=(
        ("synth", 5e-4),
        ("hybrid_synth", 5e-4),
        ("supervised_synth", 5e-4),
        ("hybrid_synth_long", 5e-4),  # hybrid_synth's own rate, trained longer
        ("supervised_synth_long", 5e-4),  # supervised_synth's own rate, trained as long
    ),
    finetune_steps=150,
    finetune_samples_per_volume=2,
    oracle_seeds=(0,),
    # main part: the key comparison (the default recipe against the baseline a hospital tries first) where labels
    # are scarcest, at every target contrast
    budgets=_SCARCE,
    seeds=tuple(range(6)),
    target_sites=_TARGETS,
    parts=(
        # more seeds where the interval must be narrowest (1 and 4 slices on FLAIR)
        GridPart("flair_seeds", ("site_c_flair",), _SCARCE[:2], _KEY_ROWS, tuple(range(6, 16))),
        # raw-looking scans (head, background noise, scanner units, uncropped field of view)
        GridPart("raw", ("site_c_flair_raw",), (Budget(1, "slices"), Budget(1, "scans")), _KEY_ROWS, tuple(range(6))),
        # more independent replicates of the key comparison where its interval is widest (FLAIR, 1 and 4 slices):
        # pretraining seeds 4 to 7 beside the preset's 0 to 3, fine-tuning seeds 16 to 31 (two per pretraining seed)
        GridPart(
            "flair_pretrain_seeds",
            ("site_c_flair",),
            _SCARCE[:2],
            _KEY_ROWS,
            tuple(range(16, 32)),
            pretrain_seeds=tuple(range(8)),
        ),
        # the recipe issue's first option: contrast randomisation inside hybrid pretraining, against the key rows of
        # flair_seeds and main on the same labelled slices (report --reference hybrid_aug)
        GridPart("recipe", ("site_c_flair",), _SCARCE[:2], ("hybrid_aug",), tuple(range(16))),
        # every other row at every budget on FLAIR, and at the scarce budgets on the other contrasts, one fine-tuning
        # seed per pretraining seed (hybrid_target, 1.55x the cost of hybrid and behind it in bundle 0.4's grid, is
        # left to the full preset)
        GridPart("rows", ("site_c_flair",), _SCANS_AND_SLICES, _CPU_ROWS, tuple(range(4))),
        GridPart("rows_contrasts", _TARGETS[1:], _SCARCE, _CPU_ROWS, tuple(range(4))),
        # the recipe issue's synthesis that resembles MR (MR_SYNTHESIS) inside hybrid pretraining, and its hybrid-free
        # twin, like the other rows; then more seeds where the aim is judged (FLAIR, 1 and 4 slices, as recipe)
        GridPart("synthesis", ("site_c_flair",), _SCANS_AND_SLICES, _SYNTH_ROWS, tuple(range(4))),
        GridPart("synthesis_contrasts", _TARGETS[1:], _SCARCE, _SYNTH_ROWS, tuple(range(4))),
        GridPart("synthesis_seeds", ("site_c_flair",), _SCARCE[:2], _SYNTH_ROWS, tuple(range(4, 16))),
        # hybrid_synth trained until its source validation curve levels off (SYNTHESIS_LONG_FACTOR times the steps),
        # beside hybrid_synth on the same labelled cases, at the scarce budgets of every contrast
        GridPart("synthesis_long", _TARGETS, _SCARCE, ("hybrid_synth", "hybrid_synth_long"), tuple(range(4))),
        # hybrid_synth_long's hybrid-free twin trained as long, on the same labelled cases: what the hybrid part adds
        # at 2400 steps (report --reference hybrid_synth_long)
        GridPart(
            "synthesis_long_twin", _TARGETS, _SCARCE, ("hybrid_synth_long", "supervised_synth_long"), tuple(range(4))
        ),
        # every row at the fine-tuning its validation tuning chose (the recipe issue's second option, judged on the
        # fresh test cohort): the key comparison first (hybrid and supervised_aug, which both chose intensity
        # augmentation while fine-tuning) at the scarce budgets of every contrast (report --reference hybrid_ftaug),
        # then hybrid's twin with the same fine-tuning and synth
        GridPart("tuned_finetuning", _TARGETS, _SCARCE, ("hybrid_ftaug", "supervised_aug_ftaug"), tuple(range(4))),
        GridPart("tuned_finetuning_rows", _TARGETS, _SCARCE, ("supervised_ftaug", "synth_ftaug"), tuple(range(4))),
        # the target's unlabelled scans during adaptation rather than pretraining: each key row at its validation
        # choice among the unlabelled-scan variants (hybrid: denoising them, hybrid_semi; supervised_aug: mean-teacher
        # pseudo-labels), and hybrid with noise-agreed pseudo-labels, against main's rows on the same labelled cases
        GridPart(
            "unlabelled_adaptation",
            _TARGETS,
            _SCARCE,
            ("hybrid_semi", "supervised_aug_pseudo", "hybrid_pseudo_agreed"),
            tuple(range(4)),
        ),
        # white-matter lesions on FLAIR, a class the source never labelled (docs/results-lesions.md): the mask head
        # grows by one channel; synth cannot predict lesions zero-shot, so it is fine-tuned like the others
        GridPart("lesions", ("site_c_flair_lesions",), _LESION_BUDGETS, _LESION_ROWS, tuple(range(4))),
        # the tissue-only twin of the default recipe at the lesion budgets (1 scan is in main): its tissue Dice is
        # what the lesion models must keep
        GridPart("lesions_tissue", ("site_c_flair",), _LESION_BUDGETS[1:], ("hybrid",), tuple(range(4))),
    ),
    fresh_seed=FRESH_SEED,
    pretrain_seeds=(0, 1, 2, 3),
    methods=_KEY_ROWS,
    long_control=_KEY_ROWS,
    zero_shot=(
        "hybrid",
        "supervised",
        "supervised_aug",
        "synth",
        *_SYNTH_ROWS,
        "hybrid_synth_long",
        "supervised_synth_long",
    ),
    norm_num_groups=8,
    workers=2,
)


def compute_point(preset: BenchmarkPreset, factor: int) -> BenchmarkPreset:
    """``preset`` pretrained ``factor`` times longer, everything else fixed: a point of the compute axis
    (``monai-hybrid scaling``). The epochs grow (same length each), so the bundle's cosine learning-rate schedule
    runs to the end of the longer run; the validations stay as many (their interval grows alike); the oracle keeps
    the preset's steps (a bound, not a pretraining). Named ``<preset>_x<factor>``; ``factor`` 1 is ``preset``.

    Raises:
        ValueError: ``factor`` is not a positive integer.
    """
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"compute_point: 'factor' must be a positive integer, got {factor!r}.")
    if factor == 1:
        return preset
    return dataclasses.replace(
        preset,
        name=f"{preset.name}_x{factor}",
        pretrain_steps=preset.pretrain_steps * factor,
        pretrain_epochs=preset.pretrain_epochs * factor,
        pretrain_val_interval=preset.pretrain_val_interval * factor,
        oracle_steps=preset.oracle_steps or preset.pretrain_steps,
    )


def bundle_preset(bundle_dir: str | os.PathLike | None = None) -> BenchmarkPreset:
    """The README's model measured: every training setting read from the configs of ``bundle_dir`` (default: the
    bundle shipped in the package; ``shipped.shipped_settings``), nothing tuned for the benchmark.

    The grid: the default recipe (hybrid) and the baseline a hospital tries first (supervised_aug), four pretraining
    seeds each, fine-tuned at 1 slice, 4 slices and 1 scan (one fine-tuning seed per pretraining seed), scored on the
    development and the fresh test cohort. Its parts run one after another and resume from the stored results:
    ``main`` (FLAIR), ``contrasts`` (T2w and PD), ``supervised`` (supervised pretraining without augmentation beside
    them at the three sites).
    """
    from monai_hybrid.bundle import default_bundle_dir

    return BenchmarkPreset(
        name="bundle",
        **shipped_settings(default_bundle_dir() if bundle_dir is None else bundle_dir),
        budgets=_SCARCE,
        seeds=(0, 1, 2, 3),
        target_sites=_TARGETS[:1],
        parts=(
            GridPart("contrasts", _TARGETS[1:], _SCARCE, _KEY_ROWS, (0, 1, 2, 3)),
            GridPart("supervised", _TARGETS, _SCARCE, ("supervised",), (0, 1, 2, 3)),
        ),
        fresh_seed=FRESH_SEED,
        pretrain_seeds=(0, 1, 2, 3),
        methods=_KEY_ROWS,
        # the convergence control was run at the cpu preset (docs/results.md); here it would cost as much as a part
        long_control=(),
        zero_shot=("hybrid", "supervised", "supervised_aug"),
        oracle_seeds=(0,),
        workers=2,
    )


PRESETS: dict[str, BenchmarkPreset] = {
    # the tests' and experiments/tiny_grid.py's preset: a tiny network on the 6 mm phantom, a few steps of each kind
    # of run; its numbers mean nothing
    "tiny": BenchmarkPreset(
        name="tiny",
        resolution=6.0,
        roi=(32, 32),
        channels=(8, 16),
        attention_levels=(False, True),
        batch_volumes=2,
        samples_per_volume=2,
        pretrain_steps=4,
        finetune_steps=2,
        finetune_samples_per_volume=1,
        long_factor=2,
        budgets=(Budget(1, "scans"),),
        seeds=(0,),
        methods=("hybrid", "scratch"),
        num_head_channels=8,
        norm_num_groups=8,
    ),
    # 2 cores: 3 mm slices, a narrow 4-level network (attention at the 8 x 8 level only), two one-thread runs at a
    # time; four pretraining seeds, validated every 100 steps; fine-tuning 150 steps, with a 3x longer control of the
    # key rows (one seed per pretraining seed); the grid in parts that share the pretraining runs (docs/results.md
    # gives the time each part took)
    "cpu": _CPU,
    # the README's model (2 mm, the bundle's network, batch, steps, learning rates and precision), read from the
    # shipped configs; the key rows at the scarce budgets of every contrast, in parts (docs/results.md)
    "bundle": bundle_preset(),
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
        target_sites=("site_c_flair",),
        parts=(),
        pretrain_seeds=(0,),
        methods=("hybrid", "hybrid_target", "supervised", "synth", "scratch"),
        long_control=("hybrid",),
        zero_shot=("hybrid", "synth"),
    ),
    # a GPU: 2 mm slices, the bundle's network width doubled, 4 pretraining and 8 fine-tuning seeds, every row at
    # every budget and target contrast
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
        seeds=tuple(range(8)),
        target_sites=_TARGETS,
        fresh_seed=FRESH_SEED,
        pretrain_seeds=(0, 1, 2, 3),
        methods=(*_ROWS, "diffusion", "contrastive", "scratch_long", "hybrid_semi"),
        long_control=("hybrid", "supervised"),
        zero_shot=("hybrid", "supervised", "supervised_aug", "synth"),
        parts=(
            GridPart("lesions", ("site_c_flair_lesions",), _LESION_BUDGETS, _LESION_ROWS, tuple(range(8))),
            GridPart("lesions_tissue", ("site_c_flair",), _LESION_BUDGETS[1:], ("hybrid",), tuple(range(8))),
        ),
    ),
}
