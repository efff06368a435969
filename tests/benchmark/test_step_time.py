"""The step-time script runs end to end on a tiny network and prints both ratios (its timings are not asserted)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "step_time.py"


def test_step_time_prints_both_ratios(capsys):
    spec = importlib.util.spec_from_file_location("step_time", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (
        module.main(
            [
                "--size",
                "16",
                "--batch",
                "2",
                "--channels",
                "16",
                "32",
                "--steps",
                "1",
                "--rounds",
                "2",
                "--sample-steps",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"ratio hybrid / supervised: median \d+\.\d+ \(rounds: [\d., ]+\)", out), out
    assert re.search(r"2-step sampling segmentation median \d+\.\d+ s", out), out
    assert re.search(r"ratio sampling / one-pass: median \d+\.\d+", out), out
