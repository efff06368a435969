"""The machine a benchmark run ran on, stored with its record: wall times and verdicts are only comparable between
runs of one machine."""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

__all__ = ["NOT_RECORDED", "machine", "machine_label", "machines_of", "one_machine", "precisions"]

#: The label of records made before machines were stored.
NOT_RECORDED = "not recorded"


def _cpuinfo(cpuinfo: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's entries of ``/proc/cpuinfo`` (lower-case keys); empty where there is none."""
    entries: dict[str, str] = {}
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if not line.strip():
                break  # the first processor's block ends
            key, _, value = line.partition(":")
            entries.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    return entries


def _cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere ``platform.processor()``)."""
    entries = _cpuinfo(cpuinfo)
    name = entries.get("model name") or entries.get("hardware")
    return name or platform.processor() or platform.machine() or "unknown CPU"


def _cpu_generation(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The CPU's family and model numbers (``"family 26, model 2"``), or ``None`` where ``/proc/cpuinfo`` has none.
    A virtual machine may name every generation of a vendor's server CPUs alike ("AMD EPYC"): these numbers tell
    them apart (family 25 is AMD's Zen 3 and Zen 4, 26 Zen 5)."""
    entries = _cpuinfo(cpuinfo)
    if "cpu family" not in entries or "model" not in entries:
        return None
    return f"family {entries['cpu family']}, model {entries['model']}"


def machine() -> dict[str, str | int | None]:
    """This machine: ``cpu`` (model name), ``cpu_generation`` (family and model numbers, where the system states
    them; ``None`` elsewhere), ``cores`` (those this process may use), ``gpu`` (the first CUDA device's name,
    ``None`` without one) and ``torch`` (the version). The host's name is left out: it says nothing of the speed and
    may name a hospital's machine."""
    import torch

    from monai_hybrid.threads import available_cores

    return {
        "cpu": _cpu_model(),
        "cpu_generation": _cpu_generation(),
        "cores": available_cores(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def machine_label(m: dict | None) -> str:
    """``m`` in words: ``"NVIDIA H100 (AMD EPYC 9454, 16 cores)"``, ``"AMD EPYC (family 26, model 2; 2 cores)"``
    (the generation where it was recorded: records made before it are labelled without); ``"not recorded"`` for a
    record made before machines were stored."""
    if not m:
        return NOT_RECORDED
    cpu = m.get("cpu", "unknown CPU")
    if m.get("gpu"):
        return f"{m['gpu']} ({cpu}, {m.get('cores', '?')} cores)"
    generation = f"{m['cpu_generation']}; " if m.get("cpu_generation") else ""
    return f"{cpu} ({generation}{m.get('cores', '?')} cores)"


def machines_of(runs: Iterable[dict]) -> dict[str, int]:
    """Each machine's label (``machine_label``) -> how many of ``runs`` ran on it."""
    return dict(Counter(machine_label(run.get("machine")) for run in runs))


def one_machine(runs: Iterable[dict], where: str) -> str:
    """The machine of ``runs`` in words (``"AMD EPYC (2 cores) (40 runs)"``; records made before machines were stored
    are named as such beside it), once they are known not to come from two machines.

    Raises:
        ValueError: ``runs`` name more than one machine (a verdict pairs runs of one machine); ``where`` names the
            results in the message.
    """
    counts = machines_of(runs)
    recorded = [label for label in counts if label != NOT_RECORDED]
    if len(recorded) > 1:
        raise ValueError(
            f"{where} holds runs of {len(recorded)} machines ({counts}); a verdict pairs runs of one machine: give "
            "each machine's runs their own results.json (a benchmark folder per machine)."
        )
    return "; ".join(f"{label} ({n} runs)" for label, n in counts.items()) or NOT_RECORDED


def precisions(runs: Iterable[dict]) -> str:
    """The precisions ``runs`` trained and scored in, in words (``"float32 (40 runs)"``; records made before the
    precision was stored are named as such): a report states it from the records, not from its title."""
    counts = Counter(str(run.get("precision", NOT_RECORDED)) for run in runs)
    return "; ".join(f"{label} ({n} runs)" for label, n in counts.items()) or NOT_RECORDED
