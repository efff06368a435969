"""Weight transfer from a pretrained checkpoint to the network being fine-tuned: strict, explicit, reported.

In the spirit of nnU-Net's ``load_pretrained_weights``: every parameter must match in name and shape, except

* the mask head, re-initialised when the class count differs (``reinit_prefixes``), and
* the contrastive projection head, dropped after pretraining (``drop_prefixes``).

Anything else (a missing key, an unexpected key, another shape mismatch) is an error that lists the keys. The
report names every key loaded, skipped and re-initialised. MONAI's ``CheckpointLoader(strict_shape=False)`` is not
used: in MONAI 1.6.1 it loads nothing (it hands ``copy_model_state`` the wrapper dict, so no key matches).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from monai_hybrid.checkpoint_io import load_checkpoint

__all__ = ["TransferReport", "WeightTransferError", "transfer_weights"]

logger = logging.getLogger(__name__)


class WeightTransferError(RuntimeError):
    """The checkpoint does not fit the network beyond what transfer allows."""


@dataclass
class TransferReport:
    """What ``transfer_weights`` did, key by key.

    Attributes:
        source: where the weights came from.
        loaded: keys copied from the checkpoint.
        skipped: checkpoint keys not used (dropped heads).
        reinitialised: network keys kept at their fresh initialisation (the mask head on a class-count change).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)

    def text(self) -> str:
        return (
            f"Weights from '{self.source}': loaded {len(self.loaded)} keys, skipped {len(self.skipped)} "
            f"{self.skipped}, re-initialised {len(self.reinitialised)} {self.reinitialised}."
        )

    def save(self, path: str | os.PathLike) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(asdict(self), indent=2))


def _state_dict(checkpoint: Any, key: str) -> Mapping[str, torch.Tensor]:
    if isinstance(checkpoint, Mapping) and key in checkpoint and isinstance(checkpoint[key], Mapping):
        return checkpoint[key]
    if isinstance(checkpoint, Mapping) and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint
    raise WeightTransferError(f"the checkpoint holds neither a state dict nor one under '{key}'.")


def _unwrap(network: nn.Module) -> nn.Module:
    return network.module if hasattr(network, "module") and isinstance(network.module, nn.Module) else network


def transfer_weights(
    network: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, Any],
    key: str = "model",
    reinit_prefixes: Sequence[str] = ("mask_head.",),
    drop_prefixes: Sequence[str] = ("projection_head.",),
    reinit_always: bool = False,
) -> TransferReport:
    """Copy pretrained weights into ``network``.

    Args:
        network: the network to fine-tune (a DDP wrapper is unwrapped).
        checkpoint: a checkpoint path (loaded with ``weights_only=True``) or an already loaded checkpoint; either a
            state dict or a dict holding one under ``key``.
        key: key of the state dict in a training checkpoint.
        reinit_prefixes: keys that are re-initialised when their shapes differ (the mask head).
        drop_prefixes: checkpoint keys that are never loaded (the projection head).
        reinit_always: re-initialise ``reinit_prefixes`` even when the shapes match.

    Returns:
        The report; also logged.

    Raises:
        WeightTransferError: listing missing keys, unexpected keys and shape mismatches outside ``reinit_prefixes``.
    """
    source = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "<state dict>"
    loaded_ckpt = (
        load_checkpoint(checkpoint, map_location="cpu") if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    )
    try:
        state = _state_dict(loaded_ckpt, key)
    except WeightTransferError as err:
        raise WeightTransferError(f"Checkpoint '{source}': {err}") from None
    net = _unwrap(network)
    own = net.state_dict()
    report = TransferReport(source=source)
    missing, unexpected, mismatched = [], [], []
    new_state = {}
    for name, value in state.items():
        if name.startswith(tuple(drop_prefixes)):
            report.skipped.append(name)
        elif name not in own:
            unexpected.append(name)
        elif name.startswith(tuple(reinit_prefixes)) and (reinit_always or own[name].shape != value.shape):
            report.reinitialised.append(name)
        elif own[name].shape != value.shape:
            mismatched.append(f"{name}: checkpoint {list(value.shape)}, network {list(own[name].shape)}")
        else:
            new_state[name] = value
            report.loaded.append(name)
    for name in own:
        if name not in state and not name.startswith(tuple(drop_prefixes)):
            if name.startswith(tuple(reinit_prefixes)):
                report.reinitialised.append(name)
            else:
                missing.append(name)
    problems = []
    if mismatched:
        problems.append(f"shape mismatches: {mismatched}")
    if missing:
        problems.append(f"keys of the network missing from the checkpoint: {missing}")
    if unexpected:
        problems.append(f"keys of the checkpoint unknown to the network: {unexpected}")
    if problems:
        raise WeightTransferError(
            f"Checkpoint '{source}' does not fit the network: {'; '.join(problems)}. Use a checkpoint pretrained with "
            "the same network_def (channels, levels, attention, spatial_dims, in_channels); only the mask head may "
            "differ (number of classes)."
        )
    net.load_state_dict({**own, **new_state}, strict=True)
    if report.reinitialised:
        logger.warning("Mask head re-initialised (class count differs or asked for): %s", report.reinitialised)
    logger.info(report.text())
    logger.info("Loaded keys: %s", report.loaded)
    return report
