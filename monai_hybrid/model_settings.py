"""The settings that define a trained model, recorded beside its weights.

A model trained with other model-defining settings (3D, other classes, another network width, another spacing) must be
evaluated and served with those settings, not with the bundle's defaults. The training run writes them as
``model_settings.json`` into the folder of its checkpoints (``ModelSettingsWriter``); ``inference.yaml`` and
``evaluate.yaml`` read them from the folder of the model they load (``read_model_settings``), so the user never
repeats training overrides at inference, and MONAI Label serves the model it is given.

The settings, as declared under ``model_settings`` in the bundle's ``configs/common.yaml``:

* ``class_names``: the classes, background first; their count is the mask head's output channels;
* ``in_channels``: image channels;
* ``spatial_dims``: 2 (axial slices of the volumes) or 3 (patches);
* ``pixdim``: the voxel spacing (mm) that images are resampled to;
* ``roi_size``: the training crop and the inference window (2 or 3 values);
* ``divisible_k``: the padding multiple of the network input (``DivisiblePadd``'s ``k``);
* ``network_args``: the ``HybridDiffusionUNet`` arguments besides ``spatial_dims``, ``in_channels``, ``num_classes``;
* ``intensity``: ``ScaleIntensityRangePercentilesd``'s ``lower``, ``upper``, ``b_min``, ``b_max``;
* ``noise_schedule``: the diffusion noise schedule (``num_train_timesteps``, ``schedule`` of MONAI's
  ``DDPMScheduler``) the model was trained with, for inference's ensemble over noise levels; models trained before
  bundle 0.5 did not record it and get ``DEFAULT_NOISE_SCHEDULE``, the only schedule those bundles used;
* ``denoised_timesteps`` (optional): the image head learned to denoise ``t <`` this (0: never; ``None``: not
  recorded), written by pretraining (``configs/pretrain.yaml``); ``sample`` needs ``num_train_timesteps``
  (``monai_hybrid.sampling.check_samplable``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_hybrid.atomic_write import write_text_atomic
from monai_hybrid.jsonio import read_json_object
from monai_hybrid.options import check_spatial_dims

__all__ = [
    "DEFAULT_NOISE_SCHEDULE",
    "SETTINGS_FILE",
    "SETTINGS_KEYS",
    "check_model_settings",
    "read_model_settings",
    "save_model_settings",
]

logger = logging.getLogger(__name__)

SETTINGS_FILE = "model_settings.json"
SETTINGS_KEYS = (
    "class_names",
    "in_channels",
    "spatial_dims",
    "pixdim",
    "roi_size",
    "divisible_k",
    "network_args",
    "intensity",
)
_INTENSITY_KEYS = ("lower", "upper", "b_min", "b_max")
#: The noise schedule of every model trained before it was recorded (bundle 0.4 and earlier): MONAI's DDPM schedule,
#: linear betas over 1000 steps, the only one those bundles trained with.
DEFAULT_NOISE_SCHEDULE = {"num_train_timesteps": 1000, "schedule": "linear_beta"}


def _plain(value: Any) -> Any:
    """``value`` as JSON types (tuples and tensors become lists)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_model_settings(settings: Mapping[str, Any], source: str = "model settings") -> dict[str, Any]:
    """Validated model settings as a plain dict.

    Args:
        settings: the settings (the keys of ``SETTINGS_KEYS``).
        source: where they come from, named in the errors (a file path).

    Raises:
        ValueError: a key is missing or holds a value of the wrong kind; the message names the key and ``source``.
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"{source}: the model settings must be a mapping, got {type(settings).__name__}.")
    out = _plain(settings)
    missing = [k for k in SETTINGS_KEYS if k not in out]
    if missing:
        raise ValueError(
            f"{source}: model settings lack {missing}; write them with the bundle's training configs (they record "
            f"every key of 'model_settings' in configs/common.yaml)."
        )
    names = out["class_names"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{source}: 'class_names' must list at least 2 class names (background first), got {names!r}.")
    out["spatial_dims"] = check_spatial_dims(out["spatial_dims"], source)
    if not isinstance(out["in_channels"], int) or out["in_channels"] < 1:
        raise ValueError(f"{source}: 'in_channels' must be a positive integer, got {out['in_channels']!r}.")
    roi = out["roi_size"]
    if not isinstance(roi, list) or len(roi) != out["spatial_dims"]:
        raise ValueError(
            f"{source}: 'roi_size' must hold {out['spatial_dims']} sizes (one per spatial dimension), got {roi!r}; "
            "3D runs need configs/3d.yaml in --config_file."
        )
    if not isinstance(out["pixdim"], list) or len(out["pixdim"]) != 3:
        raise ValueError(f"{source}: 'pixdim' must hold 3 spacings (mm), got {out['pixdim']!r}.")
    if not isinstance(out["network_args"], dict) or "channels" not in out["network_args"]:
        raise ValueError(f"{source}: 'network_args' must be a mapping with 'channels', got {out['network_args']!r}.")
    intensity = out["intensity"]
    if not isinstance(intensity, dict) or sorted(intensity) != sorted(_INTENSITY_KEYS):
        raise ValueError(f"{source}: 'intensity' must hold exactly {list(_INTENSITY_KEYS)}, got {intensity!r}.")
    schedule = out.setdefault("noise_schedule", dict(DEFAULT_NOISE_SCHEDULE))  # recorded since bundle 0.5
    if not isinstance(schedule, dict) or sorted(schedule) != sorted(DEFAULT_NOISE_SCHEDULE):
        raise ValueError(
            f"{source}: 'noise_schedule' must hold exactly {list(DEFAULT_NOISE_SCHEDULE)}, got {schedule!r}."
        )
    denoised = out.setdefault("denoised_timesteps", None)  # recorded since bundle 0.8, by pretraining only
    if denoised is not None and (isinstance(denoised, bool) or not isinstance(denoised, int) or denoised < 0):
        raise ValueError(
            f"{source}: 'denoised_timesteps' must be null or a non-negative integer (the image head denoised t < it), "
            f"got {denoised!r}."
        )
    return out


def save_model_settings(settings: Mapping[str, Any], folder: str | os.PathLike) -> Path:
    """Write ``settings`` (validated) to ``folder/model_settings.json`` atomically; returns the path."""
    folder = Path(folder)
    path = folder / SETTINGS_FILE
    checked = check_model_settings(settings, str(path))
    return write_text_atomic(path, json.dumps(checked, indent=2) + "\n")  # a temporary name per process (DDP)


def read_model_settings(model_path: str | os.PathLike, bundle_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The settings of the model at ``model_path``: ``model_settings.json`` in its folder.

    A model without recorded settings (weights from elsewhere, or no model yet, as for
    ``python -m monai.bundle verify_net_in_out``) gets the bundle's defaults, ``model_settings`` of
    ``<bundle_root>/configs/common.yaml``, with a warning.

    Args:
        model_path: the weights file; the settings are read from its folder.
        bundle_root: the bundle folder, for the defaults.

    Raises:
        FileNotFoundError: neither the settings file nor the bundle's ``configs/common.yaml`` exists (the message
            says the model does not exist when it does not).
        ValueError: the settings file is not valid JSON or lacks a setting (naming the file and the key).
    """
    path = Path(model_path).parent / SETTINGS_FILE
    if path.is_file():
        settings = read_json_object(path, "Model settings", "retrain the model, or fix or remove the file.")
        return check_model_settings(settings, str(path))
    common = Path(bundle_root if bundle_root is not None else ".") / "configs" / "common.yaml"
    if not common.is_file() and not Path(model_path).is_file():
        raise FileNotFoundError(
            f"Model '{model_path}' does not exist; train one first (the finetune run writes models/model.pt), or "
            "pass --model_path (relative paths are relative to the bundle root)."
        )
    if not common.is_file():
        raise FileNotFoundError(
            f"No '{path}' beside the model and no bundle defaults at '{common}'; pass --bundle_root (the bundle "
            "folder) or put the model_settings.json written by training beside the weights."
        )
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(common))
    logger.warning("No '%s' beside the model: using the bundle defaults of '%s'.", path, common)
    return check_model_settings(parser.get_parsed_content("model_settings"), str(common))
