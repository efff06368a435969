"""The README pretraining in float32 and in bfloat16, side by side: wall time, source validation Dice, HD95 and
denoising error.

For each seed and each ``amp`` setting (``false``: float32; ``true``: the forward pass autocast to bfloat16 on a
CPU), it writes a bundle copy and runs exactly the README's main job in it, as a user types it
(``python -m monai.bundle run pretrain --config_file "$(monai-hybrid configs pretrain)"``, plus ``--amp`` and
``--seed``; every copy reads one phantom folder), then scores the final model (``model_final.pt``) on the source
site's validation subjects with ``evaluate.yaml`` in float32 (only the training precision differs) and in bfloat16
(what ``amp auto`` serves on such a CPU: the inference precision's own effect, and the two together).
The runs alternate (seed 0 float32, seed 0 bfloat16, seed 1 ...) so that machine load hits both alike. Results go
to ``OUT/precision_pretraining.json`` after each run; a run whose record is there is not run again (resume).

    python experiments/precision_pretraining.py --out runs/precision --seeds 0 1
    python experiments/precision_pretraining.py --out runs/precision --report   # the table from the stored JSON
    python experiments/precision_pretraining.py --out runs/smoke --data-dir runs/precision/demo_data --seeds 0 \
        --extra --epochs 1 --iterations_per_epoch 2   # a smoke test

The report pairs the two precisions by seed (the unit of replication: a pretraining run) and gives the mean
difference bfloat16 - float32 with its 95% t interval over seeds, and, as a finer look that ignores the spread
between runs, over (seed, subject) pairs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scipy import stats

from monai_hybrid.bundle import run_bundle, write_bundle

PRECISIONS = {"false": "float32", "true": "bfloat16"}
RESULTS = "precision_pretraining.json"


def _log(msg: str) -> None:
    sys.stdout.write(f"[precision_pretraining] {msg}\n")
    sys.stdout.flush()


def _git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pretrain(out: Path, seed: int, amp: str, data_dir: Path, extra: list[str]) -> dict:
    """Run the README pretraining in a new bundle copy; the record of its wall time and validation curve."""
    bundle = write_bundle(out / f"{PRECISIONS[amp]}_seed{seed}", overwrite=True)
    configs = subprocess.check_output(
        [sys.executable, "-m", "monai_hybrid.cli", "configs", "pretrain"], text=True, cwd=bundle
    )
    cmd = [sys.executable, "-m", "monai.bundle", "run", "pretrain", "--config_file", configs.strip()]
    cmd += ["--amp", amp, "--seed", str(seed), "--dataset_dir", str(data_dir), "--progress_bar", "false", *extra]
    _log(f"{bundle.name}: {' '.join(cmd[1:])}")
    start = time.perf_counter()
    with open(bundle / "pretrain.log", "w") as log:
        subprocess.run(cmd, cwd=bundle, stdout=log, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - start
    history = json.loads((bundle / "models" / "pretrain" / "validation_history.json").read_text())
    return {
        "seed": seed,
        "amp": amp,
        "precision": PRECISIONS[amp],
        "wall_s": wall,
        "history": history,
        "commit": _git_commit(),
    }


def evaluate(out: Path, record: dict, data_dir: Path, amp: str = "false") -> dict:
    """Per-subject Dice and HD95 of the run's final model on the source validation subjects, scored with ``amp``
    (``false``: float32; ``true``: the forward passes in bfloat16, as ``amp auto`` serves it on such a CPU)."""
    bundle = out / f"{record['precision']}_seed{record['seed']}"
    eval_dir = bundle / "eval" / f"source_validation_{PRECISIONS[amp]}"
    run_bundle(
        "run",
        ["inference.yaml", "evaluate.yaml"],
        bundle,
        model_path=str(bundle / "models" / "pretrain" / "model_final.pt"),
        input=str(data_dir / "site_a_t1w" / "datalist.json"),
        datalist_key="validation",
        dataset_dir=str(data_dir),
        output_dir=str(eval_dir),
        amp=amp,
    )
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    return {"cases": metrics["cases"], "summary": metrics["summary"]}


def _interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean of ``diffs`` and its 95% t interval (nan bounds below two values)."""
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return mean, mean - half, mean + half


def _verdict(low: float, high: float, margin: float, higher_is_better: bool) -> str:
    """``level`` when the interval lies inside +-margin, ``worse``/``better`` when it excludes 0 on that side; else
    ``no loss beyond the margin`` when the interval rules out a loss larger than ``margin`` (the question a default
    asks), ``undecided`` when it does not."""
    if -margin <= low and high <= margin:
        return "level"
    if low > 0 or high < 0:
        better = (low > 0) == higher_is_better
        return "better" if better else "worse"
    if (low >= -margin) if higher_is_better else (high <= margin):
        return f"no loss beyond {margin:g}"
    return "undecided"


def _dice(record: dict, scoring: str) -> float:
    return record[scoring]["summary"]["mean_fg_dice"]["mean"]


def _hd95(record: dict, scoring: str) -> float:
    return record[scoring]["summary"]["mean_hd95"]["mean"]


def _cases(record: dict, scoring: str) -> list[float]:
    return [c["mean_fg_dice"] for c in record[scoring]["cases"]]


SCORINGS = {"float32": "evaluation", "bfloat16": "evaluation_bfloat16"}


def report(results: dict) -> str:
    """The markdown tables of the stored results: per run, and the paired differences of the training precision, of
    the inference precision, and of both together (``amp auto`` on a bfloat16 CPU against ``amp false``)."""
    runs = results["runs"]
    scored = [s for s in SCORINGS.values() if all(s in r for r in runs)]
    lines = [
        f"Machine: {results['machine']}; commits (training, bfloat16 scoring): "
        + ", ".join(sorted({f"{r.get('commit')}, {r.get('evaluation_bfloat16_commit')}" for r in runs}))
        + ".",
        "",
        "| seed | trained in | wall (min) | run's own val Dice (end) | denoising MSE (end) | "
        + " | ".join(f"val Dice, scored in {p} | HD95 mm, {p}" for p, s in SCORINGS.items() if s in scored)
        + " |",
        "|---|---|---|---|---|" + "---|---|" * len(scored),
    ]
    for r in sorted(runs, key=lambda r: (r["seed"], r["precision"] != "float32")):
        last = r["history"][-1]
        cells = " | ".join(f"{_dice(r, s):.4f} | {_hd95(r, s):.2f}" for s in scored)
        lines.append(
            f"| {r['seed']} | {r['precision']} | {r['wall_s'] / 60:.1f} | {last.get('val_mean_dice', float('nan')):.4f}"
            f" | {last.get('val_denoise_mse', float('nan')):.5f} | {cells} |"
        )
    by = {(r["seed"], r["precision"]): r for r in runs}
    seeds = sorted({s for s, p in by if (s, "float32") in by and (s, "bfloat16") in by})
    if not seeds:
        return "\n".join(lines)
    lines += ["", "| difference | mean | 95% interval | unit | verdict |", "|---|---|---|---|---|"]

    def row(name: str, diffs: list[float], unit: str, margin: float, higher: bool, fmt: str = "+.4f") -> None:
        mean, low, high = _interval(diffs)
        verdict = _verdict(low, high, margin, higher) if len(diffs) > 1 else "one pair"
        lines.append(f"| {name} | {mean:{fmt}} | [{low:{fmt}}, {high:{fmt}}] | {unit} | {verdict} |")

    pairs = [(by[(s, "float32")], by[(s, "bfloat16")]) for s in seeds]
    n = f"{len(seeds)} seeds"
    f32, b16 = SCORINGS["float32"], SCORINGS["bfloat16"]
    row(
        "training in bfloat16, Dice (scored in float32)",
        [_dice(b, f32) - _dice(a, f32) for a, b in pairs],
        n,
        DICE_MARGIN,
        True,
    )
    cases = [y - x for a, b in pairs for x, y in zip(_cases(a, f32), _cases(b, f32), strict=True)]
    row(
        "training in bfloat16, Dice (scored in float32)",
        cases,
        f"{len(cases)} (seed, subject) pairs",
        DICE_MARGIN,
        True,
    )
    row(
        "training in bfloat16, HD95 mm (scored in float32)",
        [_hd95(b, f32) - _hd95(a, f32) for a, b in pairs],
        n,
        HD95_MARGIN,
        False,
        "+.2f",
    )
    hd_cases = [
        y["mean_hd95"] - x["mean_hd95"] for a, b in pairs for x, y in zip(a[f32]["cases"], b[f32]["cases"], strict=True)
    ]
    row(
        "training in bfloat16, HD95 mm (scored in float32)",
        hd_cases,
        f"{len(hd_cases)} (seed, subject) pairs",
        HD95_MARGIN,
        False,
        "+.2f",
    )
    mse = [b["history"][-1]["val_denoise_mse"] - a["history"][-1]["val_denoise_mse"] for a, b in pairs]
    row("training in bfloat16, denoising MSE", mse, n, MSE_MARGIN, False, "+.5f")
    if b16 in scored:
        models = [r for pair in pairs for r in pair]
        row(
            "scoring in bfloat16, Dice (same model)",
            [_dice(r, b16) - _dice(r, f32) for r in models],
            f"{len(models)} models",
            DICE_MARGIN,
            True,
        )
        cases = [y - x for r in models for x, y in zip(_cases(r, f32), _cases(r, b16), strict=True)]
        row("scoring in bfloat16, Dice (same model)", cases, f"{len(cases)} (model, subject) pairs", DICE_MARGIN, True)
        row("both (amp auto vs false), Dice", [_dice(b, b16) - _dice(a, f32) for a, b in pairs], n, DICE_MARGIN, True)
        row(
            "both (amp auto vs false), HD95 mm",
            [_hd95(b, b16) - _hd95(a, f32) for a, b in pairs],
            n,
            HD95_MARGIN,
            False,
            "+.2f",
        )
    ratio = [a["wall_s"] / b["wall_s"] for a, b in pairs]
    lines.append(f"| wall time float32 / bfloat16 | {statistics.fmean(ratio):.2f}x | | {n} | |")
    lines += [
        "",
        f"Verdict words: *level* when the whole interval lies within +-{DICE_MARGIN} Dice (+-{HD95_MARGIN} mm, "
        f"+-{MSE_MARGIN} MSE), *worse* or *better* when it excludes 0, *no loss beyond* the margin when it rules out a "
        "larger loss but not a larger gain, *undecided* otherwise. The (seed, subject) rows "
        "ignore the spread between runs; the seed rows are the unit of replication.",
    ]
    return "\n".join(lines)


#: the difference the verdict calls negligible (the margin the benchmark's verdicts use for Dice)
DICE_MARGIN = 0.01
HD95_MARGIN = 1.0
MSE_MARGIN = 0.001


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder of the bundle copies and the results JSON")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--report", action="store_true", help="print the table of the stored results and stop")
    p.add_argument("--data-dir", type=Path, default=None, help="the phantom folder (default: OUT/demo_data)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more bundle arguments (a smoke test)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / RESULTS
    results = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    if args.report:
        sys.stdout.write(report(results) + "\n")
        return 0
    results.update(machine=f"{_cpu_name()}, {len(__import__('os').sched_getaffinity(0))} cores")
    data_dir = (args.data_dir or args.out / "demo_data").resolve()
    for seed in args.seeds:
        for amp in PRECISIONS:
            if any(r["seed"] == seed and r["amp"] == amp for r in results["runs"]):
                continue
            record = pretrain(args.out, seed, amp, data_dir, args.extra)
            record["evaluation"] = evaluate(args.out, record, data_dir)
            results["runs"].append(record)
            path.write_text(json.dumps(results, indent=1))
            _log(f"{record['precision']} seed {seed}: {record['wall_s'] / 60:.1f} min, {record['history'][-1]}")
    for record in results["runs"]:  # every model scored in bfloat16 too (what amp auto serves on such a CPU)
        if "evaluation_bfloat16" not in record:
            record["evaluation_bfloat16"] = evaluate(args.out, record, data_dir, amp="true")
            record["evaluation_bfloat16_commit"] = _git_commit()
            path.write_text(json.dumps(results, indent=1))
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
