"""The machine stored with each benchmark record: a verdict pairs runs of one machine."""

from __future__ import annotations

import pytest

from monai_hybrid.benchmark import machine as machine_module
from monai_hybrid.benchmark.machine import machine, machine_label, one_machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC

processor\t: 1
cpu family\t: 99
model\t\t: 9
model name\t: Other
"""


def test_the_cpu_generation_tells_apart_cpus_of_one_name(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    assert machine_module._cpu_model(str(info)) == "AMD EPYC"
    assert machine_module._cpu_generation(str(info)) == "family 26, model 2"  # the first processor's
    assert machine_module._cpu_generation(str(tmp_path / "none")) is None
    monkeypatch.setattr(machine_module, "_cpu_generation", lambda: "family 26, model 2")
    here = machine()
    assert here["cpu_generation"] == "family 26, model 2" and here["cores"] >= 1
    zen5 = {"cpu": "AMD EPYC", "cpu_generation": "family 26, model 2", "cores": 2, "gpu": None}
    zen4 = {**zen5, "cpu_generation": "family 25, model 17"}
    older = {k: v for k, v in zen5.items() if k != "cpu_generation"}  # a record made before the generation was
    assert machine_label(zen5) == "AMD EPYC (family 26, model 2; 2 cores)"
    assert machine_label(older) == "AMD EPYC (2 cores)"
    assert machine_label({**zen5, "gpu": "NVIDIA H100"}) == "NVIDIA H100 (AMD EPYC, 2 cores)"
    with pytest.raises(ValueError, match="holds runs of 2 machines"):
        one_machine([{"machine": zen5}, {"machine": zen4}], "'results.json'")
    assert one_machine([{"machine": zen5}] * 3, "x") == "AMD EPYC (family 26, model 2; 2 cores) (3 runs)"
