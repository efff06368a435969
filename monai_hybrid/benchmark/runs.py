"""The runs of a benchmark: pretraining, fine-tuning and evaluation, each a run of the bundle's own configs.

Every run goes through MONAI's ``ConfigWorkflow`` (``monai_hybrid.bundle.run_bundle``) with overrides, so the
benchmark measures exactly what a user runs. Each function takes a ``RunContext`` and a step of the plan and returns
the record of the run.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_hybrid.benchmark.compute import step_flops
from monai_hybrid.benchmark.machine import machine
from monai_hybrid.benchmark.plan import FinetuneStep, PretrainStep, Step, ZeroShotStep, pretraining_seed
from monai_hybrid.benchmark.presets import BenchmarkPreset
from monai_hybrid.bundle import run_bundle
from monai_hybrid.data.datalist import load_list
from monai_hybrid.options import RunKind
from monai_hybrid.stacks import OVERLAYS, RUNS, config_stack

__all__ = ["RunContext", "evaluate", "finetune", "pretrain", "run_step", "zero_shot"]

PRETRAIN_CONFIGS = RUNS["pretrain"]
FINETUNE_CONFIGS = RUNS["finetune"]
EVALUATE_CONFIGS = RUNS["evaluate"]
#: The overlay that declares the unlabelled scans (pretraining on the target's, semi-supervised fine-tuning).
UNLABELED = "unlabeled"


@dataclass(frozen=True)
class RunContext:
    """What every run of one benchmark shares.

    Attributes:
        out_dir: the benchmark's folder.
        preset: the training settings.
        bundle_dir: the bundle whose configs are run.
        source: the labelled source datalist.
        targets: target site -> its datalist (the first is the one whose unlabelled scans ``hybrid_target`` sees).
        class_names: the classes every model segments.
        fresh: target site -> the datalist of its fresh test cohort (sites without one are scored on ``test`` only).
        site_classes: target site -> its classes where they are more than the source's (a lesion site); the models
            fine-tuned there grow the mask head (``new_class_init``).
    """

    out_dir: Path
    preset: BenchmarkPreset
    bundle_dir: Path
    source: str
    targets: Mapping[str, str]
    class_names: tuple[str, ...]
    fresh: Mapping[str, str] = field(default_factory=dict)
    site_classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def classes(self, site: str) -> tuple[str, ...]:
        """The classes labelled at target ``site`` (the source's, unless it adds some)."""
        return tuple(self.site_classes.get(site, self.class_names))

    def target(self, site: str | None = None) -> str:
        """The datalist of target ``site`` (default: the first target)."""
        if site is None:
            return next(iter(self.targets.values()))
        if site not in self.targets:
            raise KeyError(f"No datalist for target site {site!r}; the benchmark's targets: {list(self.targets)}.")
        return self.targets[site]

    def pretrained(self, name: str) -> Path:
        """The final checkpoint of pretraining run ``name``."""
        return self.out_dir / "pretrain" / name / "models" / "pretrain" / "model_final.pt"

    def run_dir(self, key: str) -> Path:
        """The bundle root of fine-tuning or evaluation run ``key``."""
        return self.out_dir / "runs" / key.replace("/", "_")

    def training_overrides(self, configs: Sequence[str] = ()) -> dict[str, Any]:
        """The preset's model and batch settings, as bundle config keys of a training run composed of ``configs``
        (the unlabelled scans' dataset, quiet too, exists only with the unlabeled overlay)."""
        p = self.preset
        unlabeled = OVERLAYS[UNLABELED][0] in configs
        return {
            "class_names": list(self.class_names),
            "pixdim": [p.resolution] * 3,
            "roi_size": list(p.roi),
            "network_args#channels": list(p.channels),
            "network_args#attention_levels": list(p.attention_levels),
            "network_args#num_head_channels": p.num_head_channels,
            "network_args#norm_num_groups": p.norm_num_groups,
            "batch_volumes": p.batch_volumes,
            "samples_per_volume": p.samples_per_volume,
            "generate_demo_data": False,
            "dataset_dir": str(self.out_dir / "phantom"),
            "train#dataset#progress": False,
            "validate#dataset#progress": False,
            **({"unlabeled#dataset#progress": False} if unlabeled else {}),
            "progress_bar": False,
            "amp": p.amp,
        }

    def run(self, run_id: str, configs: Sequence[str], root: Path, overrides: dict[str, Any]) -> Any:
        """Run the bundle (training configs get ``training_overrides``)."""
        common = (
            self.training_overrides(configs)
            if configs[0] == "common.yaml"
            else {"generate_demo_data": False, "amp": self.preset.amp}
        )
        return run_bundle(run_id, configs, root, self.bundle_dir, **{**common, **overrides})


def _floats(d: dict) -> dict:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float))}


def _means(summary: dict) -> dict:
    return {k: v["mean"] for k, v in summary.items()}


def pretrain(ctx: RunContext, step: PretrainStep) -> dict:
    """Pretrain on the source site (resuming an interrupted run); the record holds the source validation metrics."""
    p = ctx.preset
    root = ctx.out_dir / "pretrain" / step.name
    resume = (root / "models" / "pretrain" / "checkpoint_last.pt").is_file()
    start = time.perf_counter()
    workflow = ctx.run(
        "pretrain",
        config_stack("pretrain", (*step.overlays, UNLABELED) if step.target_unlabeled else step.overlays),
        root,
        {
            "datalist": ctx.source,
            "method#mode": step.mode,
            "seed": step.seed,
            "epochs": p.pretrain_epochs,
            "iterations_per_epoch": p.pretrain_iterations_per_epoch,
            "val_interval": p.pretrain_val_interval,
            "checkpoint_every": p.checkpoint_every,
            "learning_rate": p.learning_rate,
            "resume": resume,
            **(
                {"unlabeled_datalist": ctx.target(), "unlabeled_weight": p.unlabeled_weight}
                if step.target_unlabeled
                else {}
            ),
            **step.overrides,
        },
    )
    metrics = dict(workflow.parser.get_parsed_content("validate#evaluator").state.metrics)
    history = root / "models" / "pretrain" / "validation_history.json"
    wall_s = time.perf_counter() - start
    # the compute axis: FLOPs of one training step of the network just trained, on a batch of its training size
    parse = workflow.parser.get_parsed_content
    steps = int(parse("train#trainer").state.iteration)
    batch = (parse("batch_volumes") * parse("samples_per_volume"), parse("in_channels"), *parse("roi_size"))
    flops = step_flops(parse("network"), batch, parse("num_train_timesteps"))
    del workflow, parse
    gc.collect()
    return {
        "key": step.key,
        "kind": RunKind.PRETRAIN,
        "method": step.name,
        "pretraining": step.name.removesuffix(f"_seed{step.seed}"),
        "mode": step.mode,
        "seed": step.seed,
        "target_unlabeled": step.target_unlabeled,
        "overlays": list(step.overlays),
        "overrides": dict(step.overrides),
        "wall_s": wall_s,  # of this process only where the run was resumed
        "resumed": resume,
        "steps": steps,
        "flops_per_step": flops,
        "train_flops": flops * steps,
        "source_val": _floats(metrics),
        "source_val_curve": json.loads(history.read_text()) if history.is_file() else [],
        "steps_per_epoch": p.pretrain_iterations_per_epoch,
    }


def evaluate(
    ctx: RunContext, root: Path, model_path: Path, datalist: str, eval_list: str = "test", folder: str = "eval"
) -> dict:
    """Evaluate ``model_path`` on ``eval_list`` of ``datalist`` into ``root/folder``; returns ``metrics.json``
    (``summary`` and ``cases``)."""
    out = root / folder
    ctx.run(
        "run",
        EVALUATE_CONFIGS,
        root,
        {"input": datalist, "datalist_key": eval_list, "model_path": str(model_path), "output_dir": str(out)},
    )
    report = json.loads((out / "metrics.json").read_text())
    gc.collect()
    return {"summary": {**report["summary"], **_lesion_free(report["cases"])}, "cases": report["cases"]}


def _lesion_free(cases: list[dict]) -> dict:
    """With lesion metrics: the false-positive lesion volume (ml) on the cases whose reference has no lesion (what a
    model does on a subject without lesions, which the lesion means leave out), as a summary entry."""
    free = [float(c["lesion_fp_ml"]) for c in cases if c.get("n_ref_lesions") == 0]
    if not free:
        return {}
    return {"lesion_free_fp_ml": {"mean": float(sum(free) / len(free)), "n": len(free)}}


def _scores(ctx: RunContext, root: Path, model_path: Path, site: str, eval_list: str) -> dict:
    """The metrics of ``model_path`` on ``eval_list`` of ``site`` (means over its cases), and, for the test list of
    a site with a fresh cohort, the same on the fresh cohort under ``fresh``."""
    scores = _means(evaluate(ctx, root, model_path, ctx.target(site), eval_list)["summary"])
    if eval_list == "test" and site in ctx.fresh:
        fresh = evaluate(ctx, root, model_path, ctx.fresh[site], "test", folder="eval_fresh")
        scores["fresh"] = _means(fresh["summary"])
    return scores


def finetune(ctx: RunContext, step: FinetuneStep) -> dict:
    """Fine-tune on the step's budget, then evaluate; the record holds the mean of every metric over the cases."""
    p = ctx.preset
    root = ctx.run_dir(step.key)
    if step.budget is None:  # the oracle
        steps = p.oracle_steps or p.pretrain_steps
    else:
        steps = p.finetune_steps * (p.long_factor if step.long else 1)
    pretrained = ctx.pretrained(step.pretrained) if step.pretrained else None
    target = ctx.target(step.site)
    chosen = {}
    if step.cases is not None:  # scans chosen by the caller, not drawn
        training = {e["image"]: e for e in load_list(target, "training")}
        missing = [c for c in step.cases if c not in training]
        if missing:
            raise ValueError(f"{step.key}: {missing} are not in the 'training' list of '{target}'.")
        chosen = {"train_cases": [training[c] for c in step.cases]}
    start = time.perf_counter()
    ctx.run(
        "finetune",
        config_stack("finetune", (*step.overlays, *((UNLABELED,) if step.semi else ()))),
        root,
        {
            "samples_per_volume": p.finetune_samples_per_volume or p.samples_per_volume,
            "datalist": target,
            "class_names": list(ctx.classes(step.site)),
            "pretrained_checkpoint": str(pretrained) if pretrained else None,
            "num_labeled": step.budget.k if step.budget else 0,
            "label_unit": step.budget.unit if step.budget else "scans",
            "selection_seed": step.seed,
            "seed": step.seed,
            "epochs": 1,
            "iterations_per_epoch": steps,
            "val_interval": 10**6,
            "learning_rate": p.finetune_learning_rate,
            **({"unlabeled_weight": p.unlabeled_weight} if step.semi else {}),
            **chosen,
            **step.overrides,
        },
    )
    train_s = time.perf_counter() - start
    scores = _scores(ctx, root, root / "models" / "model.pt", step.site, step.eval_list)
    drawn = root / "models" / "labelled_cases.json"
    cases = chosen["train_cases"] if chosen else json.loads(drawn.read_text())["cases"]
    return {
        "key": step.key,
        "kind": RunKind.FINETUNE,
        "method": step.method,
        "budget": step.budget.name if step.budget else "all scans",
        "site": step.site,
        "seed": step.seed,
        # the unit of replication: the pretraining seed the run starts from (fine-tuning seed s from pretraining
        # seed s % P of its part; scratch rows are grouped alike)
        "replicate": pretraining_seed(step, p.pretrain_seeds),
        "steps": steps,
        "pretrained": str(pretrained) if pretrained else None,
        "eval_list": step.eval_list,
        "overrides": dict(step.overrides),
        **({"overlays": list(step.overlays)} if step.overlays else {}),
        "chosen": [{k: v for k, v in c.items() if k in ("image", "slice_z_mm")} for c in cases],
        "train_s": train_s,
        "wall_s": time.perf_counter() - start,
        **scores,
    }


def zero_shot(ctx: RunContext, step: ZeroShotStep) -> dict:
    """The source model, not fine-tuned, on the test subjects of the step's target site (a lower bound)."""
    start = time.perf_counter()
    scores = _scores(ctx, ctx.run_dir(step.key), ctx.pretrained(step.name), step.site, "test")
    return {
        "key": step.key,
        "kind": RunKind.BOUND,
        "method": f"zero-shot ({step.name.removesuffix(f'_seed{step.seed}')})",
        "budget": "0",
        "site": step.site,
        "seed": step.seed,
        "wall_s": time.perf_counter() - start,
        **scores,
    }


_RUNS = {PretrainStep: pretrain, FinetuneStep: finetune, ZeroShotStep: zero_shot}


def run_step(ctx: RunContext, step: Step) -> dict:
    """Run ``step``; returns its record, with the machine it ran on and the precision its forward passes used
    (``resolve_precision`` of the preset's ``amp`` here)."""
    import torch

    from monai_hybrid.engines.precision import resolve_precision

    record = _RUNS[type(step)](ctx, step)
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return {**record, "machine": machine(), "precision": str(resolve_precision(ctx.preset.amp, device))}
