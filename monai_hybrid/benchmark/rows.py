"""The rows of the benchmark: how each is pretrained (``PRETRAININGS``), fine-tuned (``FINETUNE_TUNING``) and named
(``METHODS``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Pretraining",
    "MR_SYNTHESIS",
    "SYNTHESIS_LONG_FACTOR",
    "PRETRAININGS",
    "FINETUNE_TUNING",
    "Method",
    "METHODS",
]


@dataclass(frozen=True)
class Pretraining:
    """A pretraining run of the benchmark (one per pretraining seed).

    Attributes:
        name: the run's name.
        mode: the bundle's ``method#mode``.
        overlays: the bundle's overlays composed on ``pretrain`` (``intensity_augmentation``, ``synthesis``; see
            ``monai_hybrid.stacks.OVERLAYS``).
        overrides: more bundle config keys (the method's settings as ``method#<name>``).
        target_unlabeled: also denoise the target site's ``unlabeled`` scans (never its test subjects), with the
            preset's ``unlabeled_weight``.
        steps_factor: trains this many times the preset's ``pretrain_steps`` (more epochs of the same length).
    """

    name: str
    mode: str
    overlays: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    target_unlabeled: bool = False
    steps_factor: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.steps_factor, int) or self.steps_factor < 1:
            raise ValueError(
                f"Pretraining {self.name!r}: 'steps_factor' must be a positive integer, got {self.steps_factor!r}."
            )


#: Synthesis that resembles MR more than one Gaussian per tissue class (the recipe issue's ``hybrid_synth``): three
#: intensity sub-clusters per label and partial-volume borders (``synthesis.yaml``'s settings). Chosen from the
#: SynthSeg papers' design, not tuned here: the rows that use it get the same learning-rate variants as every row
#: (``tuning.TUNING``).
MR_SYNTHESIS = {"synthesis_clusters": 3, "synthesis_partial_volume": 1.0}


#: How many times the preset's pretraining steps ``hybrid_synth_long`` trains: its source validation curve was still
#: rising at the cpu preset's 600 steps (docs/results.md), so it gets 2400 there, the extra cost stated with its
#: results.
SYNTHESIS_LONG_FACTOR = 4


#: Pretraining runs, by name.
PRETRAININGS: dict[str, Pretraining] = {
    p.name: p
    for p in (
        Pretraining("hybrid", "hybrid"),
        Pretraining("hybrid_target", "hybrid", target_unlabeled=True),
        Pretraining("supervised", "supervised"),
        Pretraining("supervised_aug", "supervised", ("intensity_augmentation",)),
        Pretraining("synth", "supervised", ("synthesis",)),
        # contrast randomisation inside hybrid pretraining: the augmented or synthesised image is noised and denoised
        Pretraining("hybrid_aug", "hybrid", ("intensity_augmentation",)),
        Pretraining("hybrid_synth", "hybrid", ("synthesis",), MR_SYNTHESIS),
        # hybrid_synth's hybrid-free twin: what the hybrid part adds to the same synthesis
        Pretraining("supervised_synth", "supervised", ("synthesis",), MR_SYNTHESIS),
        # hybrid_synth trained until its source validation curve levels off: SYNTHESIS_LONG_FACTOR times the steps
        Pretraining("hybrid_synth_long", "hybrid", ("synthesis",), MR_SYNTHESIS, steps_factor=SYNTHESIS_LONG_FACTOR),
        # its hybrid-free twin trained as long (the scaling issue's question: does the hybrid part gain with compute?)
        Pretraining(
            "supervised_synth_long", "supervised", ("synthesis",), MR_SYNTHESIS, steps_factor=SYNTHESIS_LONG_FACTOR
        ),
        Pretraining("diffusion", "diffusion"),
        Pretraining("contrastive", "contrastive"),
    )
}


#: The fine-tuning options for the smallest budgets (the recipe issue), the same for every row: ``overlays`` composed
#: on the fine-tuning run and bundle ``overrides``; ``unfreeze``: the share of the preset's fine-tuning steps after
#: which a staged variant trains every parameter (``stages#unfreeze_at``). The first variant is the grid's own
#: fine-tuning.
FINETUNE_TUNING: dict[str, dict] = {
    "all": {},  # every parameter from the first step (the bundle's default)
    # linear probing, then everything at half the rate: the head alone for two thirds of the steps, or for the
    # bundle's own share (100 of its 300 steps)
    "head then all": {"overlays": ("staged_finetuning",), "unfreeze": 2 / 3},
    "short head then all": {"overlays": ("staged_finetuning",), "unfreeze": 1 / 3},
    "input and norms": {  # a contrast change is an input-level shift: the first block and the normalisation layers
        "overlays": ("staged_finetuning",),
        "overrides": {"stages#trainable": "input_norm", "stages#unfreeze_at": None},
    },
    "augmented": {"overlays": ("intensity_augmentation",)},  # intensity augmentation while fine-tuning
    # the target's unlabelled scans during adaptation: denoised beside the labelled ones (the unlabeled overlay's
    # weight, 0.5, as hybrid_semi), or pseudo-labelled by a mean teacher, whose voxels are chosen by its confidence
    # alone or also by the agreement of its passes over small noise levels (the hybrid model's own uncertainty)
    "denoising unlabelled": {"overlays": ("unlabeled",)},
    "pseudo-labels": {"overlays": ("unlabeled", "pseudo_labels")},
    "noise-agreed pseudo-labels": {
        "overlays": ("unlabeled", "pseudo_labels"),
        "overrides": {"pseudo_labels#timesteps": [0, 50, 100, 150]},
    },
}


@dataclass(frozen=True)
class Method:
    """A row of the benchmark.

    Attributes:
        name: the row's name.
        pretrain: the pretraining (a key of ``PRETRAININGS``) it is fine-tuned from; ``None``: from scratch.
        long: fine-tuned ``long_factor`` times longer (``scratch_long``).
        semi: semi-supervised fine-tuning (denoising the target's unlabelled scans too).
        finetuning: its fine-tuning, a variant of ``FINETUNE_TUNING`` (``all``: the bundle's default).
    """

    name: str
    pretrain: str | None
    long: bool = False
    semi: bool = False
    finetuning: str = "all"

    def __post_init__(self) -> None:
        if self.finetuning not in FINETUNE_TUNING:
            raise ValueError(
                f"Method {self.name!r}: finetuning must be one of {list(FINETUNE_TUNING)}, got {self.finetuning!r}."
            )


#: Rows of the benchmark, by name.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("hybrid", "hybrid"),
        Method("hybrid_target", "hybrid_target"),
        Method("supervised", "supervised"),
        Method("supervised_aug", "supervised_aug"),
        Method("synth", "synth"),
        Method("hybrid_aug", "hybrid_aug"),
        Method("hybrid_synth", "hybrid_synth"),
        Method("hybrid_synth_long", "hybrid_synth_long"),
        Method("supervised_synth", "supervised_synth"),
        Method("supervised_synth_long", "supervised_synth_long"),
        Method("diffusion", "diffusion"),
        Method("contrastive", "contrastive"),
        Method("scratch", None),
        Method("scratch_long", None, long=True),
        Method("hybrid_semi", "hybrid", semi=True),
        # rows at the fine-tuning that their own validation tuning chose (docs/results/tuning_finetuning_cpu.md):
        # intensity augmentation while fine-tuning for hybrid, supervised_aug and synth; supervised_ftaug is hybrid's
        # hybrid-free twin with the same fine-tuning (supervised itself chose ``all``, as did the synthesis rows)
        Method("hybrid_ftaug", "hybrid", finetuning="augmented"),
        Method("supervised_ftaug", "supervised", finetuning="augmented"),
        Method("supervised_aug_ftaug", "supervised_aug", finetuning="augmented"),
        Method("synth_ftaug", "synth", finetuning="augmented"),
        # the target's unlabelled scans during adaptation (docs/results/tuning_unlabelled_cpu.md): supervised_aug at its
        # validation choice (pseudo-labels; hybrid's choice, denoising them, is hybrid_semi), and hybrid with the
        # pseudo-labels that its own noise levels agree on, the option the hybrid model alone has
        Method("supervised_aug_pseudo", "supervised_aug", finetuning="pseudo-labels"),
        Method("hybrid_pseudo_agreed", "hybrid", finetuning="noise-agreed pseudo-labels"),
    )
}
