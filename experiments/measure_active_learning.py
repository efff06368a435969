"""Which scans to annotate first: the hybrid model's disagreement across small noise levels against random choice.

From the hybrid models pretrained by a benchmark run (``monai-hybrid benchmark``, its ``pretrain/hybrid_seed<p>``),
on the target site of its phantom: the disagreement strategy ranks the target's training scans with the pretrained
model (``monai_hybrid.active_learning``) and takes the top k; random choice takes k scans of a permutation drawn with
the seed. Both are fine-tuned with the benchmark's recipe on the k scans (k = 1, 2, 3, 5; fine-tuning seed ``s``
starts from the benchmark's pretraining seed ``s`` modulo their number) and scored on the target's test subjects.

    python experiments/measure_active_learning.py --benchmark runs/benchmark --out runs/active_learning

Writes ``results.json`` (every run, with the scans chosen and the ranking) and ``results.md`` (Dice by k, the paired
differences) to ``--out``; a rerun resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path

BUDGETS = (1, 2, 3, 5)
STRATEGIES = ("hybrid_disagreement", "random")


def _ranking(bundle: Path, pretrained: Path, scans: list[str]) -> list[tuple[str, float]]:
    from monai_hybrid.active_learning import BundleScorer, rank_by_disagreement

    scorer = BundleScorer(str(bundle), model_path=str(pretrained))
    return rank_by_disagreement(scans, scorer.load, scorer.score)


def main(argv: list[str] | None = None) -> int:
    from monai_hybrid.benchmark import BenchmarkPreset, Budget, FinetuneStep, markdown_table, paired_table
    from monai_hybrid.benchmark.executor import execute, quiet_logs
    from monai_hybrid.benchmark.runs import RunContext
    from monai_hybrid.benchmark.store import ResultStore
    from monai_hybrid.data.datalist import load_list

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", required=True, help="output folder of a finished 'monai-hybrid benchmark' run")
    p.add_argument("--out", required=True, help="output folder (a rerun resumes)")
    p.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds")
    p.add_argument("--workers", type=int, default=2, help="runs at once")
    args = p.parse_args(argv)

    bench = Path(args.benchmark)
    saved = json.loads((bench / "results.json").read_text())
    preset = dataclasses.replace(BenchmarkPreset.from_json(saved["preset"]), seeds=tuple(range(args.seeds)))
    target = saved["target_datalist"] or str(bench / "phantom" / "site_c_flair" / "datalist.json")
    source = saved["source_datalist"] or str(bench / "phantom" / "site_a_t1w" / "datalist.json")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the benchmark's pretrained models and configs; this run's own folder for everything it writes
    for name in ("pretrain", "phantom"):
        link = out / name
        if not link.exists():
            link.symlink_to((bench / name).resolve())
    ctx = RunContext(out, preset, bench / "bundle", source, {"target": target}, tuple(saved["class_names"]))
    scans = [e["image"] for e in load_list(target, "training")]
    rankings = {}
    for pseed in preset.pretrain_seeds:
        path = out / f"ranking_pretrain_seed{pseed}.json"
        if not path.is_file():
            ranked = _ranking(ctx.bundle_dir, ctx.pretrained(f"hybrid_seed{pseed}"), scans)
            path.write_text(json.dumps(ranked, indent=1))
        rankings[pseed] = [name for name, _ in json.loads(path.read_text())]
    steps = []
    for seed in preset.seeds:
        pseed = preset.pretrain_seeds[seed % len(preset.pretrain_seeds)]
        order = {"hybrid_disagreement": rankings[pseed], "random": random.Random(seed).sample(scans, len(scans))}
        for strategy in STRATEGIES:
            for k in BUDGETS:
                steps.append(
                    FinetuneStep(
                        f"al/{strategy}/scans{k}/seed{seed}",
                        strategy,
                        Budget(k, "scans"),
                        seed,
                        pretrained=f"hybrid_seed{pseed}",
                        cases=tuple(order[strategy][:k]),
                    )
                )
    store = ResultStore(out, preset, {"benchmark": str(bench), "rankings": rankings})
    store.load()
    todo = [s for s in steps if store.done(s.key) is None]
    undo = quiet_logs()
    try:
        execute(todo, ctx, store.record, workers=args.workers)
    finally:
        undo()
    budgets = [Budget(k, "scans").name for k in BUDGETS]
    table = markdown_table(store.runs, budgets)
    paired = paired_table(store.runs, "hybrid_disagreement", ["random"], budgets)
    (out / "results.md").write_text(
        "# Active learning on the target site\n\nMean foreground Dice on the target test subjects after fine-tuning "
        f"on the k scans each strategy chose (mean +- std over seeds, n):\n\n{table}\n\nPaired by seed:\n\n{paired}\n"
    )
    sys.stdout.write(f"{table}\n\n{paired}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
