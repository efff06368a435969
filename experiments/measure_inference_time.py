"""One volume through ``inference.yaml``, timed in each precision, and how much the label maps differ.

Runs the bundle's inference config (MONAI's ``ConfigWorkflow``, in this process) on one scan of a datalist, with
``amp`` false (float32) and true (bfloat16 on a CPU) in alternating rounds; prints the median seconds of the whole
run (parsing, network, weights, loading and resampling the scan, the sliding window, inverting and writing the label
map) and of the evaluator alone, and the share of voxels whose label differs between the two precisions.

    python experiments/measure_inference_time.py --bundle-root my_bundle \\
        --model-path my_bundle/models/pretrain/model_final.pt --datalist my_bundle/demo_data/site_a_t1w/datalist.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from monai_hybrid.bundle import run_bundle


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle-root", type=Path, required=True)
    p.add_argument("--model-path", type=Path, required=True)
    p.add_argument("--datalist", type=Path, required=True)
    p.add_argument("--key", default="validation", help="the datalist's list whose first scan is segmented")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    entry = json.loads(args.datalist.read_text())[args.key][0]
    image = str((args.datalist.parent / entry["image"]).resolve())  # an absolute path stays as it is
    work = Path(tempfile.mkdtemp(prefix="measure-inference-"))
    one = work / "one_scan.json"
    one.write_text(json.dumps({"scans": [{"image": image}]}))
    totals: dict[str, list[float]] = {"false": [], "true": []}
    evaluators: dict[str, list[float]] = {"false": [], "true": []}
    precision: dict[str, str] = {}
    for _ in range(args.rounds):
        for amp in totals:
            start = time.perf_counter()
            workflow = run_bundle(
                "run",
                ["inference.yaml"],
                args.bundle_root,
                model_path=str(args.model_path),
                input=str(one),
                datalist_key="scans",
                output_dir=str(work / amp),
                amp=amp,
            )
            totals[amp].append(time.perf_counter() - start)
            state = workflow.parser.get_parsed_content("evaluator").state
            evaluators[amp].append(state.times["COMPLETED"])
            precision[amp] = str(workflow.parser.get_parsed_content("precision"))
    name = Path(image).name.replace(".nii.gz", "_seg.nii.gz")
    labels = {amp: np.asarray(nib.load(str(work / amp / name)).dataobj) for amp in totals}
    differ = float((labels["false"] != labels["true"]).mean())
    lines = [
        f"CPU, {torch.get_num_threads()} threads; {Path(image).name} {labels['false'].shape}; median of {args.rounds}",
        "",
        "| precision | whole run (s) | evaluator (s) |",
        "|---|---|---|",
    ]
    for amp in totals:
        lines.append(
            f"| {precision[amp]} | {statistics.median(totals[amp]):.2f} | {statistics.median(evaluators[amp]):.2f} |"
        )
    lines += ["", f"voxels whose label differs between the two: {differ:.4%}"]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
