"""The hybrid model's own ensemble at inference against one clean pass, on the target sites' *validation* subjects.

From the fine-tuned hybrid models of a benchmark run (``monai-hybrid benchmark``, its ``runs/<row>_<site>_<budget>
_seed<s>/models/model.pt``), each model is evaluated twice with the bundle's own ``evaluate.yaml`` on its site's
validation list: one pass at t = 0, and the ensemble (``--timesteps``, ``--draws``: mask logits averaged over the
noise levels and draws). The paired difference ensemble minus one pass gets the benchmark report's 95% interval
(t on the per-pretraining-seed means) and verdict. The cost is measured side by side in the same process: the
inferer alone (``MaskInferer``) on a volume of ``--volume`` voxels with the benchmark's network, in alternating
rounds after one untimed warm-up call of each, as a median ratio; and the evaluations' wall times.

    python experiments/measure_ensemble.py --benchmark runs/benchmark --out runs/ensemble

Writes ``results.json`` (every evaluation, the timings) and ``results.md`` to ``--out``.

The cost alone, with no benchmark run: the network of ``--model``'s ``model_settings.json`` (default: the bundle's
``configs/common.yaml``), weights as initialised (the time does not depend on them); prints the ratio, and writes
``timing.json`` to ``--out`` when given:

    python experiments/measure_ensemble.py --cost-only --timesteps 0 50 100 150 --draws 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def _time_ratio(settings: dict, timesteps: list[int], draws: int, volume: list[int], rounds: int) -> dict:
    import torch
    from monai.networks.schedulers import DDPMScheduler

    from monai_hybrid.engines import MaskInferer, window_inferer
    from monai_hybrid.networks import hybrid_unet_from_settings

    net = hybrid_unet_from_settings(settings, output_mode="mask").eval()
    tiles = window_inferer(settings["spatial_dims"], settings["roi_size"]).inferer
    single = MaskInferer(tiles)
    ensemble = MaskInferer(tiles, timesteps, draws, DDPMScheduler(**settings["noise_schedule"]))
    x = torch.randn(1, settings["in_channels"], *volume)
    times: dict[str, list[float]] = {"one pass": [], "ensemble": []}
    with torch.no_grad():
        single(x, net), ensemble(x, net)  # warm-up, untimed: the first call's one-off costs are no pass's
        for _ in range(rounds):
            for name, inferer in (("one pass", single), ("ensemble", ensemble)):
                start = time.perf_counter()
                inferer(x, net)
                times[name].append(time.perf_counter() - start)
    ratios = [e / s for e, s in zip(times["ensemble"], times["one pass"], strict=True)]
    return {
        "passes": ensemble.passes,
        "median_ratio": statistics.median(ratios),
        "ratios": ratios,
        "times": times,
        "volume": volume,
        "torch_threads": torch.get_num_threads(),
    }


def _cost_line(timing: dict) -> str:
    return (
        f"Cost: {timing['passes']} forward passes per window; inferer time ratio ensemble / one pass, median of "
        f"{len(timing['ratios'])} alternating rounds: {timing['median_ratio']:.2f}."
    )


def _cost_only(args: argparse.Namespace) -> int:
    from monai_hybrid.bundle import default_bundle_dir
    from monai_hybrid.model_settings import read_model_settings

    # no model: a path without settings beside it, so read_model_settings gives the bundle's defaults
    model = Path(args.model) if args.model else default_bundle_dir() / "models" / "none" / "model.pt"
    settings = read_model_settings(model, default_bundle_dir())
    timing = _time_ratio(settings, args.timesteps, args.draws, args.volume, args.rounds)
    timing["settings"] = {"timesteps": args.timesteps, "draws": args.draws, "model": args.model}
    one = statistics.median(timing["times"]["one pass"])
    many = statistics.median(timing["times"]["ensemble"])
    lines = [
        f"t in {args.timesteps}, {args.draws} draw(s) per level above 0, volume {args.volume}, "
        f"{timing['torch_threads']} torch threads",
        f"one pass: median {one:.3f} s; ensemble: median {many:.3f} s",
        _cost_line(timing),
    ]
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "timing.json").write_text(json.dumps(timing, indent=1))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    from monai_hybrid.benchmark.stats import compare
    from monai_hybrid.benchmark.tables import markdown_table
    from monai_hybrid.bundle import run_bundle
    from monai_hybrid.model_settings import read_model_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", help="folder of a 'monai-hybrid benchmark' run")
    p.add_argument("--out", help="output folder (a rerun resumes)")
    p.add_argument("--cost-only", action="store_true", help="only time the ensemble against one pass")
    p.add_argument("--model", help="with --cost-only: a model.pt whose model_settings.json defines the network")
    p.add_argument("--row", default="hybrid", help="the benchmark row whose fine-tuned models are scored")
    p.add_argument("--budgets", nargs="+", default=["1 slice", "1 scan"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--timesteps", type=int, nargs="+", default=[0, 50, 100, 150])
    p.add_argument("--draws", type=int, default=2)
    p.add_argument("--volume", type=int, nargs="+", default=[64, 64, 40], help="voxels of the timed volume")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if args.cost_only:
        return _cost_only(args)
    if not args.benchmark or not args.out:
        p.error("--benchmark and --out are required (or --cost-only)")

    bench, out = Path(args.benchmark), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = json.loads((bench / "results.json").read_text())
    pretrain_seeds = len(saved["preset"]["pretrain_seeds"])
    store = out / "results.json"
    done = json.loads(store.read_text()) if store.is_file() else {"runs": []}
    keys = {r["key"] for r in done["runs"]}
    models = [
        r
        for r in saved["runs"]
        if r.get("kind") == "finetune"
        and r["method"] == args.row
        and r["budget"] in args.budgets
        and r["seed"] in args.seeds
        and not r.get("site", "target").endswith("_raw")
    ]
    if not models:
        raise SystemExit(
            f"No fine-tuned '{args.row}' model at budgets {args.budgets} and seeds {args.seeds} in '{bench}'; check "
            "--row, --budgets and --seeds against its results.json."
        )
    variants = {
        "one pass": {"ensemble_timesteps": [0]},
        "ensemble": {"ensemble_timesteps": args.timesteps, "ensemble_draws": args.draws},
    }
    for run in models:
        root = bench / "runs" / run["key"].replace("/", "_")
        site = run.get("site", "target")
        datalist = Path(saved["target_datalist"]) if site == "target" else bench / "phantom" / site / "datalist.json"
        for name, overrides in variants.items():
            key = f"{name}/{run['key']}"
            if key in keys:
                continue
            folder = out / run["key"].replace("/", "_") / name.replace(" ", "_")
            start = time.perf_counter()
            run_bundle(
                "run",
                ("inference.yaml", "evaluate.yaml"),
                root,
                None,  # this checkout's bundle configs (the ensemble settings are newer than the benchmark's copy)
                input=str(datalist),
                datalist_key="validation",
                model_path=str(root / "models" / "model.pt"),
                output_dir=str(folder),
                generate_demo_data=False,
                **overrides,
            )
            summary = json.loads((folder / "metrics.json").read_text())["summary"]
            done["runs"].append(
                {
                    "key": key,
                    "kind": "finetune",
                    "method": name,
                    "budget": run["budget"],
                    "site": site,
                    "seed": run["seed"],
                    "replicate": run["seed"] % pretrain_seeds,
                    "wall_s": time.perf_counter() - start,
                    **{k: v["mean"] for k, v in summary.items()},
                }
            )
            store.write_text(json.dumps(done, indent=1))
    # through read_model_settings: models trained before bundle 0.5 get the noise schedule they were trained with
    settings = read_model_settings(bench / "runs" / models[0]["key"].replace("/", "_") / "models" / "model.pt")
    done["timing"] = _time_ratio(settings, args.timesteps, args.draws, args.volume, args.rounds)
    done["settings"] = {"timesteps": args.timesteps, "draws": args.draws, "row": args.row, "eval_list": "validation"}
    store.write_text(json.dumps(done, indent=1))
    runs = done["runs"]
    sites = sorted({r["site"] for r in runs})
    lines = [
        f"# The hybrid ensemble (t in {args.timesteps}, {args.draws} draws) against one pass, validation subjects\n"
    ]
    for site in [*sites, None]:
        where = site or "every site"
        lines.append(f"## {where}\n\n{markdown_table(runs, args.budgets, site=site)}\n")
        for budget in args.budgets:
            for metric, better in (("mean_fg_dice", True), ("mean_hd95", False), ("fp_far_ml", False)):
                c = compare(runs, "ensemble", "one pass", budget, metric, site, better)
                if c is not None:
                    lines.append(
                        f"- {budget}, {metric}: ensemble minus one pass {c.mean:+.4f} [{c.low:+.4f}, {c.high:+.4f}] "
                        f"({c.wins}/{c.n}): **{c.word}**"
                    )
        lines.append("")
    lines.append(_cost_line(done["timing"]))
    (out / "results.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
