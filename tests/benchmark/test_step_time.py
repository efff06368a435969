"""The step-time experiment runs end to end on a tiny network and prints both ratios (its timings are not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "measure_step_time.py"


def test_step_time_prints_both_ratios():
    args = "--size 16 --batch 2 --channels 16 32 --steps 1 --rounds 2 --sample-steps 2 --device cpu".split()
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"ratio hybrid / supervised: median \d+\.\d+ \(rounds: [\d., ]+\)", out), out
    assert re.search(r"2-step sampling segmentation median \d+\.\d+ s", out), out
    assert re.search(r"ratio sampling / one-pass: median \d+\.\d+", out), out
