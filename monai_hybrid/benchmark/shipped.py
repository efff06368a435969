"""The training settings of the shipped bundle, read from its configs: what the benchmark's ``bundle`` preset runs.

The values are read with MONAI's ``ConfigParser`` from the config files each run composes (``monai_hybrid.stacks``),
so the preset cannot drift from what ``python -m monai.bundle run pretrain`` and ``run finetune`` train.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from monai_hybrid.stacks import config_stack

__all__ = ["SHIPPED_KEYS", "shipped_settings"]

#: ``BenchmarkPreset`` field -> (run whose config stack declares it, bundle config key).
SHIPPED_KEYS: dict[str, tuple[str, str]] = {
    "roi": ("pretrain", "roi_size"),
    "channels": ("pretrain", "network_args#channels"),
    "attention_levels": ("pretrain", "network_args#attention_levels"),
    "num_head_channels": ("pretrain", "network_args#num_head_channels"),
    "norm_num_groups": ("pretrain", "network_args#norm_num_groups"),
    "batch_volumes": ("pretrain", "batch_volumes"),
    "samples_per_volume": ("pretrain", "samples_per_volume"),
    "pretrain_epochs": ("pretrain", "epochs"),
    "pretrain_val_interval": ("pretrain", "val_interval"),
    "checkpoint_every": ("pretrain", "checkpoint_every"),
    "learning_rate": ("pretrain", "learning_rate"),
    "amp": ("pretrain", "amp"),
    "finetune_learning_rate": ("finetune", "learning_rate"),
    "finetune_samples_per_volume": ("finetune", "samples_per_volume"),
}


def _literal(parser: Any, run: str, key: str, files: list[str]) -> Any:
    """The value of ``key`` as written (an expression or reference cannot be a benchmark setting)."""
    if key not in parser:
        raise KeyError(f"The bundle's {run} configs {files} declare no '{key}'; the bundle preset reads it from there.")
    value = parser[key]
    if isinstance(value, str) and value[:1] in ("$", "@", "%"):
        raise ValueError(
            f"'{key}' of the bundle's {run} configs {files} is the expression {value!r}; the bundle preset needs a "
            "value written out (set it in the config file, or run another preset)."
        )
    return value


def shipped_settings(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """The training settings of the bundle in ``bundle_dir``, as ``BenchmarkPreset`` fields.

    Args:
        bundle_dir: a bundle folder (``configs/common.yaml`` and the rest), e.g. ``bundle.default_bundle_dir()``.

    Returns:
        ``resolution`` (the isotropic ``pixdim``), ``pretrain_steps`` (``epochs * iterations_per_epoch`` of
        pretraining), ``finetune_steps`` (the same of fine-tuning), and every field of ``SHIPPED_KEYS``, as plain
        Python values (tuples for lists).

    Raises:
        FileNotFoundError: a config file of the stacks is missing.
        KeyError: a setting is not declared.
        ValueError: a setting is an expression, or ``pixdim`` is not isotropic.
    """
    from monai.bundle import ConfigParser

    configs = Path(bundle_dir) / "configs"
    parsers = {}
    for run in ("pretrain", "finetune"):
        files = [str(configs / name) for name in config_stack(run)]
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"The bundle in '{bundle_dir}' lacks {missing}; the bundle preset reads them.")
        parser = ConfigParser()
        parser.read_config(files)
        parsers[run] = (parser, files)

    def read(run: str, key: str) -> Any:
        parser, files = parsers[run]
        value = _literal(parser, run, key, files)
        return tuple(value) if isinstance(value, list) else value

    settings = {name: read(run, key) for name, (run, key) in SHIPPED_KEYS.items()}
    pixdim = read("pretrain", "pixdim")
    if len(set(pixdim)) != 1:
        raise ValueError(
            f"The bundle's pixdim {list(pixdim)} is not isotropic; the benchmark's phantom has one resolution."
        )
    settings["resolution"] = float(pixdim[0])
    settings["amp"] = str(settings["amp"]).lower()
    settings["pretrain_steps"] = int(read("pretrain", "epochs")) * int(read("pretrain", "iterations_per_epoch"))
    settings["finetune_steps"] = int(read("finetune", "epochs")) * int(read("finetune", "iterations_per_epoch"))
    return settings
