"""One row against itself in two stored benchmarks of one machine that differ in one setting (the bundle grid at
pretraining learning rate 5e-4 against the one at 1e-3, say): ``A`` minus ``B`` per row and budget on the fresh test
cohort, paired by site and seed (the same labelled cases), with the benchmark report's 95% interval (Student's t on
the per-pretraining-seed means) and verdict.

    python experiments/compare_grids.py docs/results/benchmark_bundle.json docs/results/benchmark_bundle_lr1e-3.json \\
        --rows hybrid supervised_aug --site site_c_flair

Prints a Markdown table; the inputs are the raw results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from monai_hybrid.benchmark.machine import one_machine
from monai_hybrid.benchmark.presets import BenchmarkPreset
from monai_hybrid.benchmark.records import cohort_view, grid_records, with_replicates
from monai_hybrid.benchmark.stats import compare


def _fresh(path: Path, suffix: str) -> tuple[list[dict], BenchmarkPreset]:
    saved = json.loads(path.read_text())
    preset = BenchmarkPreset.from_json(saved["preset"])
    runs = cohort_view(grid_records(with_replicates(saved["runs"], len(preset.pretrain_seeds))))
    return [{**r, "method": f"{r.get('method')}{suffix}"} for r in runs], preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="results.json of the new setting")
    parser.add_argument("b", type=Path, help="results.json it is compared with")
    parser.add_argument("--rows", nargs="+", default=["hybrid", "supervised_aug"], help="rows compared with themselves")
    parser.add_argument("--site", default=None, help="one target site (default: every site both ran, pooled)")
    parser.add_argument("--metric", default="mean_fg_dice", help="a fresh-cohort metric of the records")
    args = parser.parse_args()
    for path in (args.a, args.b):
        if not path.is_file():
            parser.error(f"no results file '{path}'")
    a, preset = _fresh(args.a, "")
    b, _ = _fresh(args.b, "@b")
    machine = one_machine(a + b, f"'{args.a}' and '{args.b}' together")
    higher = args.metric not in ("mean_hd95", "fp_far_ml")
    print(f"{args.metric}, {args.a.name} minus {args.b.name}, fresh cohort, site {args.site or 'pooled'}; {machine}\n")
    print("| row | " + " | ".join(budget.name for budget in preset.budgets) + " |")
    print("|---|" + "---|" * len(preset.budgets))
    for row in args.rows:
        cells = []
        for budget in preset.budgets:
            c = compare(a + b, row, f"{row}@b", budget.name, args.metric, site=args.site, higher_is_better=higher)
            cells.append(
                "not run" if c is None else f"{c.mean:+.3f} [{c.low:+.3f}, {c.high:+.3f}] ({c.wins}/{c.n}) {c.word}"
            )
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
