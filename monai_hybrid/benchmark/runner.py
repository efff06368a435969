"""The label-efficiency benchmark: pretrain every mode, fine-tune each on each label budget, evaluate on the target
test subjects (DESIGN.md section 5).

Every run is a run of the bundle's own configs (``pretrain.yaml``, ``finetune.yaml``, ``inference.yaml`` +
``evaluate.yaml``) through MONAI's ``ConfigWorkflow`` with overrides, so the benchmark measures exactly what a user
runs. Results are appended to ``results.json`` after every run; a killed benchmark resumes where it stopped.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from monai_hybrid.benchmark.presets import METHODS, BenchmarkPreset, Budget
from monai_hybrid.bundle import default_bundle_dir, run_bundle
from monai_hybrid.data.phantom import SUMMARY_FILE, ensure_phantom
from monai_hybrid.data.prepare import prepare_datalist
from monai_hybrid.data.sites import DEFAULT_TARGET_SITE, SOURCE_SITE

__all__ = ["ABLATIONS", "BenchmarkRunner", "Step", "default_bundle_dir", "RESULTS_FILE"]

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
_PRETRAIN_EPOCHS = 4
_CLASS_NAMES = ["background", "csf", "grey_matter", "white_matter"]


class BenchmarkRunner:
    """Runs the grid of a preset and keeps every result.

    Args:
        out_dir: folder of everything the benchmark writes.
        preset: what to run.
        bundle_dir: the bundle whose configs are run (default: the one in this checkout).
        target_site: the phantom's target site (ignored with ``target_datalist``).
        source_datalist: a labelled source datalist to use instead of the phantom's source site.
        target_datalist: a target datalist (``training``, ``validation``, ``test``, ``unlabeled``) instead of the
            phantom's target site.
        track: log every run to MLflow (``out_dir/mlruns.db``).
        progress: show a progress bar over runs.
        workers: runs executed at once, each in its own process with ``cpu_count // workers`` threads (1: all in
            this process). Small networks use two cores better as two one-thread runs than as one two-thread run.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        preset: BenchmarkPreset,
        bundle_dir: str | os.PathLike | None = None,
        target_site: str = DEFAULT_TARGET_SITE,
        source_datalist: str | os.PathLike | None = None,
        target_datalist: str | os.PathLike | None = None,
        track: bool = True,
        progress: bool = True,
        workers: int = 1,
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"BenchmarkRunner: 'workers' must be a positive integer, got {workers!r}.")
        self.out_dir = Path(out_dir)
        self.preset = preset
        self.bundle_dir = Path(bundle_dir) if bundle_dir is not None else default_bundle_dir()
        if not (self.bundle_dir / "configs" / "pretrain.yaml").is_file():
            raise FileNotFoundError(
                f"No bundle configs in '{self.bundle_dir}'; pass the folder of hybrid_brain_mri_segmentation "
                "(--bundle)."
            )
        unknown = [m for m in preset.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"BenchmarkRunner: unknown methods {unknown}; known: {list(METHODS)}.")
        self.target_site = target_site
        self.source_datalist = str(source_datalist) if source_datalist else None
        self.target_datalist = str(target_datalist) if target_datalist else None
        self.track = track
        self.progress = progress
        self.workers = workers
        self._in_worker = False
        self.results_path = self.out_dir / RESULTS_FILE
        self.runs: list[dict] = []

    # ---- bookkeeping ------------------------------------------------------------------------------------------------
    def _load(self) -> None:
        if self.results_path.is_file():
            saved = json.loads(self.results_path.read_text())
            if saved.get("preset", {}).get("name") not in (None, self.preset.name):
                raise ValueError(
                    f"'{self.results_path}' holds a '{saved['preset']['name']}' benchmark; use another output folder."
                )
            self.runs = saved.get("runs", [])
            logger.info("Resuming: %d runs already done in %s", len(self.runs), self.results_path)

    def _save(self) -> None:
        payload = {
            "preset": _jsonable(asdict(self.preset)),
            "source_datalist": self.source_datalist,
            "target_datalist": self.target_datalist,
            "runs": self.runs,
        }
        tmp = self.results_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        os.replace(tmp, self.results_path)

    def _done(self, key: str) -> dict | None:
        return next((r for r in self.runs if r["key"] == key), None)

    def _record(self, run: dict) -> None:
        self.runs.append(run)
        if self._in_worker:  # the parent process records what a worker returns
            return
        self._save()
        if self.track:
            _log_mlflow(self.out_dir, self.preset.name, run)

    # ---- bundle runs ------------------------------------------------------------------------------------------------
    def _common(self) -> dict[str, Any]:
        p = self.preset
        return {
            "pixdim": [p.resolution] * 3,
            "roi_size": list(p.roi),
            "network_args#channels": list(p.channels),
            "network_args#attention_levels": list(p.attention_levels),
            "network_args#num_head_channels": p.num_head_channels,
            "network_args#norm_num_groups": p.norm_num_groups,
            "generate_demo_data": False,
            "dataset_dir": str(self.out_dir / "phantom"),
        }

    def _workflow(self, run_id: str, configs: Sequence[str], root: Path, overrides: dict) -> Any:
        common = self._common() if configs[0] == "common.yaml" else {"generate_demo_data": False}
        return run_bundle(run_id, configs, root, self.bundle_dir, **{**common, **overrides})

    def _train_overrides(self) -> dict:
        p = self.preset
        return {
            "batch_volumes": p.batch_volumes,
            "samples_per_volume": p.samples_per_volume,
            "train#dataset#progress": False,
            "validate#dataset#progress": False,
            "progress_bar": False,
        }

    def pretrain(self, mode: str, extra: dict | None = None, name: str | None = None) -> Path:
        """Pretrain ``mode`` on the source site (skipped when done); returns its final checkpoint."""
        name = name or mode
        root = self.out_dir / "pretrain" / name
        final = root / "models" / "pretrain" / "model_final.pt"
        key = f"pretrain/{name}"
        if self._done(key) and final.is_file():
            return final
        p = self.preset
        resume = (root / "models" / "pretrain" / "checkpoint_last.pt").is_file()
        start = time.perf_counter()
        workflow = self._workflow(
            "pretrain",
            ["common.yaml", "pretrain.yaml"],
            root,
            {
                **self._train_overrides(),
                "datalist": self.source,
                "mode": mode,
                "epochs": _PRETRAIN_EPOCHS,
                "iterations_per_epoch": max(1, p.pretrain_steps // _PRETRAIN_EPOCHS),
                "val_interval": _PRETRAIN_EPOCHS,
                "checkpoint_every": 50,
                "learning_rate": p.learning_rate,
                "resume": resume,
                **(extra or {}),
            },
        )
        metrics = dict(workflow.parser.get_parsed_content("validate#evaluator").state.metrics)
        self._record(
            {
                "key": key,
                "kind": "pretrain",
                "method": name,
                "mode": mode,
                "overrides": extra or {},
                "wall_s": time.perf_counter() - start,
                "source_val": _floats(metrics),
            }
        )
        del workflow
        gc.collect()
        return final

    def evaluate(self, root: Path, model_path: Path, datalist_key: str = "test") -> dict:
        """Evaluate ``model_path`` on the target's ``datalist_key`` list; returns the summary of metrics.json."""
        out = root / "eval"
        self._workflow(
            "run",
            ["inference.yaml", "evaluate.yaml"],
            root,
            {
                "input": self.target,
                "datalist_key": datalist_key,
                "model_path": str(model_path),
                "output_dir": str(out),
            },
        )
        report = json.loads((out / "metrics.json").read_text())
        gc.collect()
        return {"summary": report["summary"], "cases": report["cases"]}

    def finetune(
        self,
        key: str,
        method: str,
        budget: Budget | None,
        seed: int,
        pretrained: Path | None,
        long: bool = False,
        semi: bool = False,
        datalist_key: str = "test",
        extra: dict | None = None,
    ) -> dict:
        """Fine-tune one row of the grid and evaluate it (skipped when done)."""
        done = self._done(key)
        if done:
            return done
        p = self.preset
        root = self.out_dir / "runs" / key.replace("/", "_")
        if budget is None:  # the oracle
            steps = p.oracle_steps or p.pretrain_steps
        else:
            steps = p.finetune_steps * (p.long_factor if long else 1)
        start = time.perf_counter()
        self._workflow(
            "finetune",
            ["common.yaml", "pretrain.yaml", "finetune.yaml"],
            root,
            {
                **self._train_overrides(),
                "samples_per_volume": p.finetune_samples_per_volume or p.samples_per_volume,
                "datalist": self.target,
                "pretrained_checkpoint": str(pretrained) if pretrained else None,
                "num_labeled": budget.k if budget else 0,
                "label_unit": budget.unit if budget else "scans",
                "selection_seed": seed,
                "seed": seed,
                "epochs": 1,
                "iterations_per_epoch": steps,
                "val_interval": 10**6,
                "learning_rate": p.learning_rate / 2,
                "unlabeled_weight": p.unlabeled_weight if semi else 0.0,
                "unlabeled#dataset#progress": False,
                **(extra or {}),
            },
        )
        train_s = time.perf_counter() - start
        result = self.evaluate(root, root / "models" / "model.pt", datalist_key)
        cases = json.loads((root / "models" / "labelled_cases.json").read_text())["cases"]
        run = {
            "key": key,
            "kind": "finetune",
            "method": method,
            "budget": budget.name if budget else "all scans",
            "seed": seed,
            "steps": steps,
            "pretrained": str(pretrained) if pretrained else None,
            "eval_list": datalist_key,
            "overrides": extra or {},
            "chosen": [{k: v for k, v in c.items() if k in ("image", "slice_z_mm")} for c in cases],
            "train_s": train_s,
            "wall_s": time.perf_counter() - start,
            **_flatten(result["summary"]),
        }
        self._record(run)
        return run

    # ---- the grid ---------------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Generate the phantom if needed and verify both datalists."""
        phantom = self.out_dir / "phantom"
        if self.source_datalist is None or self.target_datalist is None:
            ensure_phantom(phantom, resolution=self.preset.resolution, progress=self.progress)
            summary = json.loads((phantom / SUMMARY_FILE).read_text())
            sites = {s["name"]: s for s in summary["sites"]}
            if self.target_site not in sites or sites[self.target_site]["role"] != "target":
                raise ValueError(
                    f"'{self.target_site}' is not a target site of the phantom; choose one of "
                    f"{[n for n, s in sites.items() if s['role'] == 'target']}."
                )
        self.source = self.source_datalist or str(phantom / SOURCE_SITE.name / "datalist.json")
        self.target = self.target_datalist or str(phantom / self.target_site / "datalist.json")
        prepare_datalist(
            self.source,
            num_classes=len(_CLASS_NAMES),
            require=("training", "validation"),
            lists=("training", "validation"),
        )
        lists = ("training", "validation", "test") + (("unlabeled",) if "hybrid_semi" in self.preset.methods else ())
        prepare_datalist(self.target, num_classes=len(_CLASS_NAMES), require=lists, lists=lists)

    def plan(self) -> list[Step]:
        """Every run of the grid: the pretraining runs first, then the runs that need none (scratch, the oracle), then
        the runs that start from a pretrained model; each names the pretraining run it needs."""
        p = self.preset
        steps: list[Step] = []
        modes = sorted({METHODS[m]["pretrain"] for m in p.methods if METHODS[m]["pretrain"]})
        ckpt = {m: self._pretrained(m) for m in modes}
        for mode in modes:
            steps.append(Step(f"pretrain/{mode}", "pretrain", {"mode": mode}))
        for seed in p.oracle_seeds or p.seeds:
            key = f"oracle/all/seed{seed}"
            steps.append(
                Step(
                    key,
                    "finetune",
                    {"key": key, "method": "oracle", "budget": None, "seed": seed, "pretrained": None, "long": True},
                )
            )
        for mode in ("hybrid", "supervised"):
            if mode in modes:
                steps.append(
                    Step(
                        f"zero_shot/{mode}",
                        "zero_shot",
                        {"mode": mode, "checkpoint": ckpt[mode]},
                        needs=(f"pretrain/{mode}",),
                    )
                )
        for budget in p.budgets:
            for seed in p.seeds:
                for method in p.methods:
                    spec = METHODS[method]
                    key = f"{method}/{budget.key}/seed{seed}"
                    needs = (f"pretrain/{spec['pretrain']}",) if spec["pretrain"] else ()
                    steps.append(
                        Step(
                            key,
                            "finetune",
                            {
                                "key": key,
                                "method": method,
                                "budget": budget,
                                "seed": seed,
                                "pretrained": ckpt[spec["pretrain"]] if spec["pretrain"] else None,
                                "long": spec.get("long", False),
                                "semi": spec.get("semi", False),
                            },
                            needs=needs,
                        )
                    )
        return _ready_first(steps)

    def _pretrained(self, name: str) -> Path:
        return self.out_dir / "pretrain" / name / "models" / "pretrain" / "model_final.pt"

    def zero_shot(self, mode: str, checkpoint: Path) -> dict:
        """The source model of ``mode`` on the target test subjects, not fine-tuned (a lower bound)."""
        key = f"zero_shot/{mode}"
        if self._done(key):
            return self._done(key)
        start = time.perf_counter()
        result = self.evaluate(self.out_dir / "runs" / key.replace("/", "_"), checkpoint)
        run = {
            "key": key,
            "kind": "bound",
            "method": f"zero-shot ({mode})",
            "budget": "0",
            "seed": 0,
            "wall_s": time.perf_counter() - start,
            **_flatten(result["summary"]),
        }
        self._record(run)
        return run

    def plan_ablations(self, budget: Budget = Budget(1, "scans")) -> list[Step]:
        """The ablations of the hybrid defaults, scored on the target's *validation* subjects (never the test ones):
        each variant is pretrained, fine-tuned on ``budget`` for every seed and evaluated."""
        steps: list[Step] = []
        for variant, extra in ABLATIONS.items():
            semi = variant.startswith("semi")
            name = "ablation_defaults" if semi or not extra else "ablation_" + variant.replace("=", "_")
            if not any(s.key == f"pretrain/{name}" for s in steps):
                steps.append(Step(f"pretrain/{name}", "pretrain", {"mode": "hybrid", "extra": extra, "name": name}))
            for seed in self.preset.seeds:
                key = f"ablation/{variant}/{budget.key}/seed{seed}"
                prediction = {"prediction_type": extra["prediction_type"]} if "prediction_type" in extra else {}
                steps.append(
                    Step(
                        key,
                        "finetune",
                        {
                            "key": key,
                            "method": variant,
                            "budget": budget,
                            "seed": seed,
                            "pretrained": self._pretrained(name),
                            "semi": semi,
                            "datalist_key": "validation",
                            "extra": prediction,
                        },
                        needs=(f"pretrain/{name}",),
                    )
                )
        return _ready_first(steps)

    def run(self, ablations: bool = False) -> list[dict]:
        """Run (or resume) the whole grid, or the ablations; returns every run."""
        from tqdm.auto import tqdm

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._load()
        self.prepare_data()
        steps = self.plan_ablations() if ablations else self.plan()
        todo = [s for s in steps if not self._done(s.key)]
        quiet = _quiet_logs()
        bar = tqdm(
            total=len(steps), initial=len(steps) - len(todo), desc="benchmark", unit="run", disable=not self.progress
        )
        try:
            if self.workers == 1:
                for step in todo:
                    bar.set_postfix_str(step.key)
                    getattr(self, step.call)(**step.kwargs)
                    bar.update()
            else:
                self._run_parallel(todo, bar)
        finally:
            bar.close()
            quiet()
        return self.runs

    def _run_parallel(self, todo: list[Step], bar: Any) -> None:
        """Run ``todo`` in ``workers`` processes, each step once the steps it needs are done (in ``todo``'s order
        among the ready ones); results are recorded here as they arrive."""
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        threads = max(1, (os.cpu_count() or 1) // self.workers)
        spec = {
            "out_dir": str(self.out_dir),
            "preset": self.preset,
            "bundle_dir": str(self.bundle_dir),
            "target_site": self.target_site,
            "source": self.source,
            "target": self.target,
        }
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
        waiting = list(todo)
        unfinished = {s.key for s in todo}
        with ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_init_worker, initargs=(threads, os.getpid())
        ) as pool:
            pending: dict = {}
            while waiting or pending:
                ready = [s for s in waiting if not unfinished.intersection(s.needs)]
                waiting = [s for s in waiting if unfinished.intersection(s.needs)]
                for step in ready:  # the pool runs what it is given in that order
                    pending[pool.submit(_run_step, spec, step)] = step
                if not pending:
                    raise RuntimeError(f"Benchmark steps wait on steps that never run: {[s.key for s in waiting]}")
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    step = pending.pop(future)
                    self._record(future.result())  # a failed run raises here and stops the benchmark
                    unfinished.discard(step.key)
                    bar.set_postfix_str(step.key)
                    bar.update()


@dataclass(frozen=True)
class Step:
    """One run of the benchmark: ``BenchmarkRunner.<call>(**kwargs)``, once the steps keyed ``needs`` are done."""

    key: str
    call: str
    kwargs: dict
    needs: tuple[str, ...] = ()


def _ready_first(steps: list[Step]) -> list[Step]:
    """``steps`` that need nothing first, each group in its own order: a step that needs another starts after it."""
    return sorted(steps, key=lambda s: bool(s.needs))


def _init_worker(threads: int, parent_pid: int) -> None:
    import threading

    import torch

    torch.set_num_threads(threads)
    _quiet_logs()
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="parent-watch").start()


def _exit_when_orphaned(parent_pid: int, interval: float = 2.0, exit: Callable[[int], Any] = os._exit) -> None:
    """Stop this worker once the benchmark process that started it is gone (killed, say): a worker would otherwise
    go on with the runs already handed to it, on cores the resumed benchmark needs."""
    while os.getppid() == parent_pid:
        time.sleep(interval)
    logger.warning("The benchmark process %d is gone; this worker stops.", parent_pid)
    exit(1)


def _run_step(spec: dict, step: Step) -> dict:
    """Run one step in a worker process; returns its record."""
    runner = BenchmarkRunner(
        spec["out_dir"],
        spec["preset"],
        bundle_dir=spec["bundle_dir"],
        target_site=spec["target_site"],
        track=False,
        progress=False,
    )
    runner._in_worker = True
    runner.source, runner.target = spec["source"], spec["target"]
    getattr(runner, step.call)(**step.kwargs)
    return runner.runs[-1]


#: Ablations of the hybrid method's defaults: pretraining overrides (and semi-supervised fine-tuning on or off).
ABLATIONS: dict[str, dict] = {
    "defaults": {},
    "mask_weight=0.1": {"mask_weight": 0.1},
    "mask_weight=1.0": {"mask_weight": 1.0},
    "prediction_type=epsilon": {"prediction_type": "epsilon"},
    "prediction_type=v_prediction": {"prediction_type": "v_prediction"},
    "t0_fraction=0.0": {"t0_fraction": 0.0},
    "t0_fraction=0.2": {"t0_fraction": 0.2},
    "semi-supervised fine-tuning": {},
}


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def _quiet_logs() -> Callable[[], None]:
    """Silence per-iteration logs during the benchmark; returns the undo.

    A filter, not a level: MONAI's ``StatsHandler`` resets its logger to INFO each time one is made.
    """
    names = [
        "ignite",
        "monai_hybrid",
        "monai.bundle",
        "py.warnings",
        "monai",
        "monai.handlers.StatsHandler",
        "monai.inferers.inferer",
        "root",
    ]
    loggers = [logging.getLogger(n) for n in names] + [logging.getLogger()]
    for lg in loggers:
        lg.addFilter(_warnings_only)
    return lambda: [lg.removeFilter(_warnings_only) for lg in loggers]


def _floats(d: dict) -> dict:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float))}


def _flatten(summary: dict) -> dict:
    return {k: v["mean"] for k, v in summary.items()}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))


def _log_mlflow(out_dir: Path, preset: str, run: dict) -> None:
    try:
        import mlflow

        client = mlflow.MlflowClient(f"sqlite:///{out_dir.resolve() / 'mlruns.db'}")
        name = f"monai-hybrid-benchmark-{preset}"
        experiment = client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else client.create_experiment(name, artifact_location=(out_dir.resolve() / "mlruns").as_uri())
        )
        mlrun = client.create_run(experiment_id, run_name=run["key"])
        for k in ("kind", "method", "budget", "seed", "steps", "pretrained", "eval_list"):
            if run.get(k) is not None:
                client.log_param(mlrun.info.run_id, k, run[k])
        for k, v in run.items():
            if isinstance(v, float) and v == v:  # skip NaN
                client.log_metric(mlrun.info.run_id, k, v)
        client.set_terminated(mlrun.info.run_id)
    except Exception as err:  # tracking must never stop the benchmark
        logger.warning("MLflow logging of %s failed (%s); the results are in results.json.", run.get("key"), err)
