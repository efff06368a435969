"""The label-efficiency benchmark (docs/results.md): pretrain every mode, fine-tune each on each label budget,
evaluate on the target test subjects.

``BenchmarkRunner`` ties the parts together: the data (``data``), the plan (``plan``), the runs (``runs``), the
executor (``executor``) and the result store (``store``). A killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_hybrid.benchmark.data import prepare_data
from monai_hybrid.benchmark.executor import execute, quiet_logs
from monai_hybrid.benchmark.plan import (
    FinetuneStep,
    PretrainStep,
    Step,
    ZeroShotStep,
    of_replicates,
    plan_ablations,
    plan_grid,
)
from monai_hybrid.benchmark.presets import BenchmarkPreset
from monai_hybrid.benchmark.runs import UNLABELED, RunContext
from monai_hybrid.benchmark.store import MlflowSink, ResultStore
from monai_hybrid.benchmark.tuning import plan_finetune_tuning, plan_tuning
from monai_hybrid.bundle import default_bundle_dir

__all__ = ["BenchmarkRunner", "refuse_stale_runs"]


def _settings(overrides: Mapping[str, Any], overlays: Sequence[str]) -> str:
    """A fine-tuning run's bundle settings as its record holds them (JSON: tuples become lists)."""
    return json.dumps({"overrides": dict(overrides), "overlays": list(overlays)}, sort_keys=True)


def refuse_stale_runs(steps: Sequence[Step], store: ResultStore) -> None:
    """Refuse to resume a folder in which a planned fine-tuning run is recorded with other settings than the plan
    gives it now: started from another pretraining run (its pretraining was given its own learning rate since, or
    other pretraining seeds), or with other bundle overrides or overlays (the lesion site's class weights, say):
    counting it done would report it under the new protocol. A pretraining tuning run is exempt from the pretraining
    check: its variant fixes its rate, whichever run carries the variant.

    Raises:
        ValueError: naming the runs, what each one was recorded with and what the plan names.
    """
    stale = []
    for step in steps:
        run = store.done(step.key)
        if not isinstance(step, FinetuneStep) or run is None:
            continue
        if "pretrained" in run and not step.key.startswith("tune/"):
            recorded = Path(run["pretrained"]).parents[2].name if run["pretrained"] else None  # pretrain/<run>/models
            if recorded != step.pretrained:
                stale.append(f"{step.key} (started from {recorded}, planned from {step.pretrained})")
                continue
        recorded = _settings(run.get("overrides", {}), run.get("overlays", ()))
        planned = _settings(step.overrides, step.overlays)
        if recorded != planned:
            stale.append(f"{step.key} (recorded with {recorded}, planned with {planned})")
    if stale:
        raise ValueError(
            f"'{store.path}' holds {len(stale)} runs recorded with other settings than the plan gives them: "
            f"{stale[:5]}{' ...' if len(stale) > 5 else ''}. The preset changed how they run (a pretraining's "
            "learning rate or seeds, a fine-tuning's overrides or overlays); use another output folder, move the "
            "stale records out of its results.json, or restore the earlier settings."
        )


class BenchmarkRunner:
    """Runs the grid (or the ablations) of a preset and keeps every result.

    Args:
        out_dir: folder of everything the benchmark writes.
        preset: what to run, with every training setting.
        bundle_dir: the bundle whose configs are run (default: the one shipped in the package).
        target_sites: the phantom's target sites of the main part of the grid (default: the preset's); the other
            parts keep their own sites.
        source_datalist: a labelled source datalist to use instead of the phantom's source site.
        target_datalist: a target datalist (``training``, ``validation``, ``test``, ``unlabeled``) instead of the
            phantom's target sites: the site ``target`` of the main part (the preset's other parts are phantom
            sites and do not run).
        class_names: the classes, background first (default: the datalists' ``labels`` maps).
        track: log every run to MLflow (``out_dir/mlruns.db``).
        progress: show a progress bar over runs.
        workers: runs executed at once, each in its own process (default: the preset's).
        parts: the grid parts to run (default: every part of the preset).
        replicates: run only the runs of these pretraining seeds (``plan.of_replicates``): a benchmark too long for
            one sitting runs in parts, one set of seeds after another, in one ``out_dir`` (default: all).

    Attributes:
        left: after ``run``, the keys of the planned runs not recorded yet (the other replicates' runs).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        preset: BenchmarkPreset,
        bundle_dir: str | os.PathLike | None = None,
        target_sites: Sequence[str] | None = None,
        source_datalist: str | os.PathLike | None = None,
        target_datalist: str | os.PathLike | None = None,
        class_names: Sequence[str] | None = None,
        track: bool = True,
        progress: bool = True,
        workers: int | None = None,
        parts: Sequence[str] | None = None,
        replicates: Sequence[int] | None = None,
    ) -> None:
        workers = preset.workers if workers is None else workers
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"BenchmarkRunner: 'workers' must be a positive integer, got {workers!r}.")
        if class_names is not None and len(class_names) < 2:
            raise ValueError(f"BenchmarkRunner: 'class_names' needs background and a class, got {list(class_names)}.")
        if target_datalist is not None:
            preset = dataclasses.replace(preset, target_sites=("target",), parts=())
            parts = None
        elif target_sites:
            preset = dataclasses.replace(preset, target_sites=tuple(target_sites))
        for name in parts or ():
            preset.part(name)  # names the parts it has
        self.out_dir = Path(out_dir)
        self.preset = preset
        self.parts = tuple(parts) if parts else None
        if replicates is not None:
            added = (p for part in preset.grid_parts for p in part.pretrain_seeds or ())
            known = list(dict.fromkeys([*preset.pretrain_seeds, *added]))
            unknown = [r for r in replicates if r not in known]
            if not replicates or unknown:
                raise ValueError(
                    f"BenchmarkRunner: 'replicates' must name pretraining seeds of the preset ({known}), got "
                    f"{list(replicates)}."
                )
        self.replicates = tuple(replicates) if replicates is not None else None
        self.left: list[str] = []
        self.bundle_dir = Path(bundle_dir) if bundle_dir is not None else default_bundle_dir()
        if not (self.bundle_dir / "configs" / "common.yaml").is_file():
            raise FileNotFoundError(
                f"No bundle configs in '{self.bundle_dir}'; pass the folder of a bundle written by "
                "'monai-hybrid bundle DIR' (--bundle)."
            )
        self.source_datalist = str(source_datalist) if source_datalist else None
        self.target_datalist = str(target_datalist) if target_datalist else None
        self.class_names = tuple(class_names) if class_names else None
        self.track = track
        self.progress = progress
        self.workers = workers

    def plan(
        self,
        ablations: bool = False,
        tuning: bool = False,
        finetune_tuning: bool = False,
        variants: Sequence[str] | None = None,
        tuning_seeds: Sequence[int] | None = None,
    ) -> list[Step]:
        """Every step of the grid (or of the ablations, or of the pretraining or fine-tuning tuning, the latter with
        the fine-tuning ``variants`` given or all, for ``tuning_seeds`` or seed 0), each after the steps it needs."""
        if finetune_tuning:
            return plan_finetune_tuning(
                self.preset,
                seeds=tuple(tuning_seeds) if tuning_seeds else (0,),
                variants=tuple(variants) if variants else None,
            )
        if tuning:
            return plan_tuning(self.preset)
        return plan_ablations(self.preset) if ablations else plan_grid(self.preset, self.parts)

    def _site_order(self, site: str) -> int:
        """The order of the preset's target sites (the main part's first)."""
        order = list(dict.fromkeys(s for part in self.preset.grid_parts for s in part.sites))
        return order.index(site) if site in order else len(order)

    def run(
        self,
        ablations: bool = False,
        tuning: bool = False,
        finetune_tuning: bool = False,
        variants: Sequence[str] | None = None,
        tuning_seeds: Sequence[int] | None = None,
    ) -> list[dict]:
        """Run (or resume) the whole grid, or the ablations, or the tuning of the rows' pretraining (``plan_tuning``)
        or fine-tuning (``plan_finetune_tuning``, with ``variants`` or all, for ``tuning_seeds`` or seed 0), in one
        folder whose runs they share; returns every recorded run."""
        from tqdm.auto import tqdm

        self.out_dir.mkdir(parents=True, exist_ok=True)
        planned = self.plan(ablations, tuning, finetune_tuning, variants, tuning_seeds)
        steps = planned
        if self.replicates is not None:  # one part of a benchmark too long for one sitting
            steps = of_replicates(planned, self.replicates, self.preset.pretrain_seeds)
        # the target sites' unlabelled scans are verified when a run reads them
        semi = any(
            getattr(s, "semi", False)
            or getattr(s, "target_unlabeled", False)
            or UNLABELED in getattr(s, "overlays", ())
            for s in steps
        )
        sites = sorted({s.site for s in steps if isinstance(s, (FinetuneStep, ZeroShotStep))}, key=self._site_order)
        data = prepare_data(
            self.out_dir,
            self.preset.resolution,
            sites,
            self.source_datalist,
            self.target_datalist,
            class_names=self.class_names,
            unlabeled=semi,
            progress=self.progress,
            fresh_seed=None if ablations or tuning or finetune_tuning else self.preset.fresh_seed,
        )
        # the runs read a copy of the bundle's configs made at the start: configs edited while the benchmark runs
        # cannot mix into it, and the copy documents what ran. It is made anew at each start, so a resumed benchmark
        # runs the configs that match the code it runs with.
        snapshot = self.out_dir / "bundle"
        shutil.rmtree(snapshot / "configs", ignore_errors=True)
        shutil.copytree(self.bundle_dir / "configs", snapshot / "configs")
        ctx = RunContext(
            self.out_dir,
            self.preset,
            snapshot,
            data.source,
            data.targets,
            data.class_names,
            data.fresh,
            data.site_classes,
        )
        header = {
            "source_datalist": self.source_datalist,
            "target_datalist": self.target_datalist,
            "target_sites": list(dict.fromkeys(s for part in self.preset.grid_parts for s in part.sites)),
            # the preset's, also when this run (ablations, tuning) scores no fresh cohort
            "fresh_seed": self.preset.fresh_seed if self.target_datalist is None else None,
            "class_names": list(data.class_names),
            **({"site_classes": {k: list(v) for k, v in data.site_classes.items()}} if data.site_classes else {}),
        }
        sinks = (MlflowSink(self.out_dir, self.preset.name),) if self.track else ()
        store = ResultStore(self.out_dir, self.preset, header, sinks)
        store.load()
        refuse_stale_runs(steps, store)

        def done(step: Step) -> bool:  # a pretraining run counts once its checkpoint is there too
            return store.done(step.key) is not None and (
                not isinstance(step, PretrainStep) or ctx.pretrained(step.name).is_file()
            )

        todo = [s for s in steps if not done(s)]
        quiet = quiet_logs()
        bar = tqdm(
            total=len(steps), initial=len(steps) - len(todo), desc="benchmark", unit="run", disable=not self.progress
        )

        def advance(step: Step) -> None:
            bar.set_postfix_str(step.key)
            bar.update()

        try:
            execute(todo, ctx, store.record, workers=self.workers, on_done=advance)
        finally:
            bar.close()
            quiet()
        self.left = [s.key for s in planned if store.done(s.key) is None]
        return store.runs
