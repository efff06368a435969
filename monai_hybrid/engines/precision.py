"""Mixed precision on any device: MONAI's float16 AMP on a GPU, bfloat16 autocast on CPUs whose bfloat16 path is
faster.

MONAI's ``SupervisedTrainer`` and ``SupervisedEvaluator`` autocast only on CUDA (``torch.autocast("cuda")``), so on a
CPU their ``amp`` does nothing. Here the forward pass is autocast through the engines' public ``inferer`` argument:
``AutocastInferer`` wraps any MONAI inferer, runs it under ``torch.autocast("cpu", dtype=torch.bfloat16)`` and hands
float32 outputs back, so the loss, the backward pass's float32 leaves, the optimiser and every metric stay float32.

Whether bfloat16 is faster depends on the CPU: cores with AVX-512 BF16 or AMX (or Arm's BF16 extension) run
bfloat16 convolutions natively, older ones convert and are slower. ``auto`` therefore turns it on only where the CPU
reports those instructions (``cpu_bfloat16_flags``), and logs what it chose.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from monai.inferers import Inferer

from monai_hybrid.bundle import flag
from monai_hybrid.options import Precision, choose

__all__ = ["BFLOAT16_FLAGS", "AutocastInferer", "cpu_bfloat16_flags", "resolve_precision", "with_precision"]

logger = logging.getLogger(__name__)

_AUTO = "auto"


def _to_float32(output: Any) -> Any:
    """``output`` with every floating tensor in it (tensors, or lists, tuples and dicts of them) cast to float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, dict):
        return {k: _to_float32(v) for k, v in output.items()}
    if isinstance(output, (list, tuple)):
        return type(output)(_to_float32(v) for v in output)
    return output


class AutocastInferer(Inferer):
    """Run a MONAI inferer with its forward passes autocast (``torch.autocast(device_type, dtype)``), and return
    float32.

    Matrix multiplications and convolutions run in ``dtype``; normalisations, softmax and reductions stay float32 as
    autocast's op lists decide. The outputs are cast back to float32 before the loss or the postprocessing sees
    them; the backward pass (outside the context) follows the recorded dtypes, as ``torch.autocast`` documents.

    Args:
        inferer: any MONAI inferer (``DiffusionInferer``, ``SimpleInferer``, the bundle's ``MaskInferer``), called
            with the engine's arguments unchanged.
        dtype: the autocast dtype: ``torch.bfloat16`` (CPU) or ``torch.float16``.
        device_type: ``"cpu"`` or ``"cuda"``.

    Raises:
        ValueError: ``inferer`` is not callable, or ``dtype`` is not a 16-bit floating dtype.
    """

    def __init__(self, inferer: Callable, dtype: torch.dtype = torch.bfloat16, device_type: str = "cpu") -> None:
        super().__init__()
        name = type(self).__name__
        if not callable(inferer):
            raise ValueError(f"{name}: 'inferer' must be a MONAI inferer, got {type(inferer).__name__}.")
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"{name}: 'dtype' must be torch.bfloat16 or torch.float16, got {dtype!r}.")
        if device_type not in ("cpu", "cuda"):
            raise ValueError(f"{name}: 'device_type' must be 'cpu' or 'cuda', got {device_type!r}.")
        self.inferer = inferer
        self.dtype = dtype
        self.device_type = device_type

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped inferer's output for the same arguments, forward passes in ``dtype``, floats returned as
        float32."""
        with torch.autocast(self.device_type, dtype=self.dtype):
            output = self.inferer(*args, **kwargs)
        return _to_float32(output)


#: /proc/cpuinfo flags of native bfloat16 arithmetic: x86 (AVX-512 BF16, AMX) and Arm (the BF16 extension)
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@functools.cache
def cpu_bfloat16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The native bfloat16 instruction sets this CPU reports (``BFLOAT16_FLAGS`` found among the ``flags`` or
    ``Features`` of ``cpuinfo``); empty where there are none or the file does not exist (not Linux).

    Without them PyTorch still runs bfloat16, but by conversion, slower than float32; with them its oneDNN
    convolutions run natively (measured on the bundle's step: ``experiments/measure_step_time.py``).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return ()
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            found.update(value.split())
    return tuple(f for f in BFLOAT16_FLAGS if f in found)


def _amp_setting(amp: Any) -> bool | str:
    """``amp`` as True, False or ``"auto"``; any other value raises naming the setting."""
    if isinstance(amp, str) and amp.strip().lower() == _AUTO:
        return _AUTO
    try:
        return flag(amp, "amp")
    except ValueError:
        raise ValueError(
            f"Config key 'amp' must be auto, true or false, got {amp!r}; pass e.g. --amp auto or --amp false."
        ) from None


def resolve_precision(amp: Any, device: torch.device | str) -> Precision:
    """The precision of a run from its ``amp`` setting and its device, logged.

    * a GPU: ``auto`` or true gives MONAI's float16 AMP (``cuda_amp``), false float32;
    * a CPU: true gives ``cpu_bfloat16``, false float32, and ``auto`` bfloat16 only where the CPU has native
      bfloat16 instructions (``cpu_bfloat16_flags``), the ones on which it is faster than float32. A fixed property
      of the machine, not a timing, so the same command chooses the same precision under any load.

    Args:
        amp: ``auto``, true or false (booleans or their strings, as MONAI's command line gives them).
        device: the run's device.

    Raises:
        ValueError: ``amp`` is none of those, or ``device`` is neither a CPU nor a CUDA device.
    """
    setting = _amp_setting(amp)
    kind = torch.device(device).type
    if kind == "cuda":
        chosen = Precision.CUDA_AMP if setting else Precision.FLOAT32
        logger.info("Precision: %s (amp %s on %s).", chosen, setting, device)
        return chosen
    if kind != "cpu":
        raise ValueError(f"resolve_precision: 'device' must be a CPU or CUDA device, got {device!r}.")
    if setting != _AUTO:
        chosen = Precision.CPU_BFLOAT16 if setting else Precision.FLOAT32
        logger.info("Precision: %s (amp %s on the CPU).", chosen, setting)
        return chosen
    flags = cpu_bfloat16_flags()
    chosen = Precision.CPU_BFLOAT16 if flags else Precision.FLOAT32
    logger.info(
        "Precision: %s (amp auto: %s; --amp false or true overrides).",
        chosen,
        f"this CPU has native bfloat16 ({', '.join(flags)})" if flags else "this CPU reports no native bfloat16",
    )
    return chosen


def with_precision(inferer: Callable, precision: Any) -> Callable:
    """``inferer`` wrapped in a bfloat16 ``AutocastInferer`` for ``cpu_bfloat16``, unchanged otherwise (float32, or
    MONAI's engines do the autocast themselves for ``cuda_amp``).

    Raises:
        ValueError: ``precision`` is not a ``Precision``.
    """
    chosen = choose(precision, Precision, "with_precision", "precision")
    if chosen is Precision.CPU_BFLOAT16:
        return AutocastInferer(inferer, dtype=torch.bfloat16, device_type="cpu")
    return inferer
