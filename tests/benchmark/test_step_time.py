"""The step-time experiment runs end to end on a tiny network and prints its table and ratios (its timings are not
asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "measure_step_time.py"


def test_step_time_prints_flops_both_precisions_and_the_ratios():
    args = "--size 16 --batch 2 --channels 16 32 --steps 1 --rounds 2 --sample-steps 2 --device cpu --matmul-size 64"
    proc = subprocess.run([sys.executable, str(SCRIPT), *args.split()], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    flops = re.search(r"FLOPs per training step \(forward \+ backward\): hybrid (\d+\.\d) GFLOP", out)
    assert flops, out
    for mode in ("hybrid", "supervised"):
        for precision in ("float32", "cpu_bfloat16"):
            assert re.search(rf"\| {mode} \| {precision} \| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+% \|", out), out
    assert re.search(r"ratio hybrid / supervised \(float32\): median \d+\.\d+ \(rounds: [\d., ]+\)", out), out
    assert re.search(r"ratio hybrid step float32 / cpu_bfloat16: median \d+\.\d+", out), out
    assert re.search(r"2-step sampling segmentation median \d+\.\d+ s", out), out
    assert re.search(r"ratio sampling / one-pass: median \d+\.\d+", out), out


def test_step_time_names_a_bad_precision():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--precisions", "float32", "fp8", "--size", "16", "--batch", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0 and "measure_step_time: '--precisions' got 'fp8'" in proc.stderr
