"""The share of a pretraining step spent waiting for data, measured on the bundle's own run.

Runs the README pretraining (``common.yaml`` + ``pretrain.yaml``, bundle defaults) for ``--steps`` steps without
validation, with Ignite's ``BasicTimeProfiler`` attached to MONAI's trainer: it times each ``next(data loader)``
(dataflow: the random crops, affine and intensity transforms that run every step on the cached volumes) apart from
the step itself (processing: noising, forward, loss, backward, optimiser) and the handlers. The cache is built
before the first step (``CacheDataset``) and is not counted. Each ``amp`` setting is run in turn (a faster step
makes the data's share larger).

    python experiments/measure_data_wait.py --bundle-root my_bundle      # a bundle folder whose demo_data exists
    python experiments/measure_data_wait.py --bundle-root B --dataset-dir PHANTOM   # a phantom elsewhere
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from ignite.handlers import BasicTimeProfiler
from monai.bundle import ConfigWorkflow

from monai_hybrid.bundle import default_bundle_dir


def profile(bundle_root: Path, steps: int, amp: str, dataset_dir: Path | None = None) -> dict:
    """Seconds of dataflow, processing and handlers over ``steps`` pretraining steps (first step excluded)."""
    bundle = default_bundle_dir()
    workflow = ConfigWorkflow(
        config_file=[str(bundle / "configs" / c) for c in ("common.yaml", "pretrain.yaml")],
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=False,
        run_id="pretrain",
        bundle_root=str(bundle_root),
        ckpt_dir=str(bundle_root / "models" / "measure_data_wait"),
        epochs=1,
        iterations_per_epoch=steps + 1,
        validation=False,
        progress_bar=False,
        checkpoint_every=10**6,
        amp=amp,
        **({"dataset_dir": str(dataset_dir)} if dataset_dir else {}),
        **{"train#dataset#progress": False},
    )
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    profiler = BasicTimeProfiler()
    profiler.attach(trainer)
    workflow.run()
    results = profiler.get_results()
    data = profiler.dataflow_times[1:]  # the first batch also starts the loader's iterator
    proc = profiler.processing_times[1:]
    handlers = results["event_handlers_stats"]["total_time"]
    workflow.finalize()
    return {
        "precision": str(workflow.parser.get_parsed_content("precision")),
        "dataflow_s": float(data.sum()),
        "processing_s": float(proc.sum()),
        "handlers_s": float(handlers),
        "steps": int(data.numel()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle-root", type=Path, required=True, help="a bundle folder (its demo_data is read)")
    p.add_argument("--dataset-dir", type=Path, default=None, help="the phantom folder (default: BUNDLE_ROOT/demo_data)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--amp", nargs="+", default=["false", "true"], help="amp settings to run in turn")
    args = p.parse_args(argv)
    lines = [
        f"CPU, {torch.get_num_threads()} threads; {args.steps} pretraining steps of the bundle defaults (first one "
        "excluded)",
        "",
        "| precision | data wait per step (ms) | step (ms) | handlers (ms per step) | data share of the step |",
        "|---|---|---|---|---|",
    ]
    for amp in args.amp:
        r = profile(args.bundle_root, args.steps, amp, args.dataset_dir)
        total = r["dataflow_s"] + r["processing_s"] + r["handlers_s"]
        n = r["steps"]
        lines.append(
            f"| {r['precision']} | {r['dataflow_s'] / n * 1e3:.1f} | {r['processing_s'] / n * 1e3:.1f} | "
            f"{r['handlers_s'] / n * 1e3:.1f} | {r['dataflow_s'] / total:.1%} |"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
