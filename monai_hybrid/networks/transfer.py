"""Weight transfer from a pretrained checkpoint to the network being fine-tuned: strict, explicit, reported.

In the spirit of nnU-Net's ``load_pretrained_weights``: every parameter must match in name and shape, except

* the mask head when the classes differ (``reinit_prefixes``): grown when the fine-tuning ``class_names`` are the
  pretrained ones followed by new names (the trained channels kept, the new ones initialised by ``new_class_init``,
  ``monai_hybrid.networks.head_growth``), re-initialised otherwise, and
* the contrastive projection head, dropped after pretraining (``drop_prefixes``).

The pretrained class names come from the ``model_settings.json`` that training writes beside its checkpoints.

Anything else (a missing key, an unexpected key, another shape mismatch) is an error that lists the keys. The
report names every key loaded, grown, skipped and re-initialised, and what became of each class channel. MONAI's
``CheckpointLoader(strict_shape=False)`` is not used: in MONAI 1.6.1 it loads nothing (it hands ``copy_model_state``
the wrapper dict, so no key matches).
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
from monai_hybrid.model_settings import SETTINGS_FILE, read_model_settings
from monai_hybrid.networks.head_growth import NewClassRule, appended_classes, grow_rows

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
        reinitialised: network keys kept at their fresh initialisation (the mask head when the classes differ and
            cannot grow).
        grown: network keys whose trained rows were kept and new rows added (the mask head's last convolution when
            classes are appended).
        mask_head: the class channels: ``action`` (``loaded``, ``grown`` or ``reinitialised``), ``pretrained``
            and ``finetuning`` class names (``None`` when unknown), ``kept`` (channel and class of each trained
            channel kept), ``added`` (channel, class, rule, bias and how, of each new channel) and ``note`` (why,
            when not grown).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    mask_head: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        text = (
            f"Weights from '{self.source}': loaded {len(self.loaded)} keys, skipped {len(self.skipped)} "
            f"{self.skipped}, re-initialised {len(self.reinitialised)} {self.reinitialised}"
        )
        if self.grown:
            added = [f"{a['class']} ({a['rule']})" for a in self.mask_head.get("added", [])]
            text += f", grown {self.grown}: kept {len(self.mask_head.get('kept', []))} trained channels, added {added}"
        return text + "."

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


def _recorded_class_names(checkpoint: Any) -> list[str] | None:
    """The class names in the ``model_settings.json`` beside a checkpoint file (``None``: no such file)."""
    if not isinstance(checkpoint, (str, os.PathLike)) or not (Path(checkpoint).parent / SETTINGS_FILE).is_file():
        return None
    return list(read_model_settings(checkpoint)["class_names"])


@dataclass
class _HeadPlan:
    """What becomes of the mask head's class channels, decided from the class names before any weight is read."""

    pretrained: list[str] | None
    finetuning: list[str] | None
    rule: NewClassRule
    grow: bool
    note: str


def _head_plan(
    pretrained: Sequence[str] | None, class_names: Sequence[str] | None, rule: NewClassRule, reinit_always: bool
) -> _HeadPlan:
    pretrained = None if pretrained is None else list(pretrained)
    finetuning = None if class_names is None else list(class_names)
    grow, note = False, ""
    if reinit_always:
        note = "re-initialisation asked for (reinit_always)"
    elif finetuning is None:
        note = "fine-tuning class names not given: channels kept only when the class count matches"
    elif pretrained is None:
        note = (
            f"no {SETTINGS_FILE} beside the checkpoint, so the pretrained classes are unknown: channels kept only "
            "when the class count matches"
        )
    elif pretrained == finetuning:
        note = "same classes"
    elif appended_classes(pretrained, finetuning) is not None:
        grow = rule.kind != "reinit"
        note = "" if grow else "classes appended, but new_class_init is 'reinit': the whole mask head re-initialised"
    elif len(pretrained) == len(finetuning):
        note = (
            "class names differ from the pretrained ones (renamed or reordered) but their count matches: channels "
            "loaded by position"
        )
    else:
        note = (
            "the fine-tuning classes are not the pretrained ones followed by new names (renamed, reordered or "
            "removed): the whole mask head re-initialised"
        )
    return _HeadPlan(pretrained, finetuning, rule, grow, note)


def _growable(own: torch.Tensor, value: torch.Tensor, plan: _HeadPlan) -> bool:
    """Whether a checkpoint tensor is one row per pretrained class of a tensor with one row per fine-tuning class."""
    return (
        plan.grow
        and own.ndim == value.ndim
        and own.ndim >= 1
        and value.shape[0] == len(plan.pretrained)
        and own.shape[0] == len(plan.finetuning)
        and own.shape[1:] == value.shape[1:]
    )


def _grow(candidates: Mapping[str, torch.Tensor], plan: _HeadPlan, report: TransferReport) -> dict[str, torch.Tensor]:
    """The grown tensors of each module among ``candidates`` that has a growable weight (its bias grows with it);
    the other candidates are re-initialised."""
    grown: dict[str, torch.Tensor] = {}
    for module in sorted({name.rsplit(".", 1)[0] for name in candidates}):
        weight, bias = candidates.get(f"{module}.weight"), candidates.get(f"{module}.bias")
        if weight is None or weight.ndim < 2:
            continue
        new_weight, new_bias, added = grow_rows(weight, bias, plan.pretrained, plan.finetuning, plan.rule)
        grown[f"{module}.weight"] = new_weight
        if new_bias is not None:
            grown[f"{module}.bias"] = new_bias
        report.mask_head["added"] = added
    report.grown.extend(sorted(grown))
    report.reinitialised.extend(sorted(set(candidates) - set(grown)))
    return grown


def transfer_weights(
    network: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, Any],
    key: str = "model",
    reinit_prefixes: Sequence[str] = ("mask_head.",),
    drop_prefixes: Sequence[str] = ("projection_head.",),
    reinit_always: bool = False,
    class_names: Sequence[str] | None = None,
    pretrained_class_names: Sequence[str] | None = None,
    new_class_init: str = "zero",
) -> TransferReport:
    """Copy pretrained weights into ``network``.

    Args:
        network: the network to fine-tune (a DDP wrapper is unwrapped).
        checkpoint: a checkpoint path (loaded with ``weights_only=True``) or an already loaded checkpoint; either a
            state dict or a dict holding one under ``key``.
        key: key of the state dict in a training checkpoint.
        reinit_prefixes: keys of the mask head: grown or re-initialised when their shapes differ.
        drop_prefixes: checkpoint keys that are never loaded (the projection head).
        reinit_always: re-initialise ``reinit_prefixes`` even when the shapes match.
        class_names: the network's classes, in channel order (``None``: unknown; the mask head is then loaded
            when its shape matches and re-initialised otherwise, as without names).
        pretrained_class_names: the checkpoint's classes; ``None``: read from the ``model_settings.json`` beside a
            checkpoint path (none there: unknown).
        new_class_init: how the channels of classes appended to the pretrained ones start: ``"zero"``,
            ``"copy:<pretrained class>"`` or ``"reinit"`` (``monai_hybrid.networks.head_growth``).

    Returns:
        The report; also logged.

    Raises:
        ValueError: ``new_class_init`` is not a rule, ``class_names`` does not hold one name per output channel of
            the network, or ``copy`` names no pretrained class.
        WeightTransferError: listing missing keys, unexpected keys and shape mismatches outside ``reinit_prefixes``.
    """
    rule = NewClassRule.parse(new_class_init)
    net = _unwrap(network)
    num_classes = getattr(net, "num_classes", None)
    if class_names is not None and num_classes is not None and len(class_names) != num_classes:
        raise ValueError(
            f"transfer_weights: 'class_names' {list(class_names)} names {len(class_names)} classes, but the network "
            f"has {num_classes} mask channels."
        )
    source = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "<state dict>"
    if pretrained_class_names is None:
        pretrained_class_names = _recorded_class_names(checkpoint)
    plan = _head_plan(pretrained_class_names, class_names, rule, reinit_always)
    loaded_ckpt = (
        load_checkpoint(checkpoint, map_location="cpu") if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    )
    try:
        state = _state_dict(loaded_ckpt, key)
    except WeightTransferError as err:
        raise WeightTransferError(f"Checkpoint '{source}': {err}") from None
    own = net.state_dict()
    report = TransferReport(source=source)
    missing, unexpected, mismatched = [], [], []
    new_state, to_grow = {}, {}
    for name, value in state.items():
        if name.startswith(tuple(drop_prefixes)):
            report.skipped.append(name)
        elif name not in own:
            unexpected.append(name)
        elif name.startswith(tuple(reinit_prefixes)) and reinit_always:
            report.reinitialised.append(name)
        elif name.startswith(tuple(reinit_prefixes)) and own[name].shape != value.shape:
            if _growable(own[name], value, plan):
                to_grow[name] = value
            else:
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
    new_state.update(_grow(to_grow, plan, report))
    net.load_state_dict({**own, **new_state}, strict=True)
    _describe_head(report, plan, num_classes)
    if report.reinitialised:
        logger.warning(
            "Mask head re-initialised (%s): %s",
            plan.note or "its shape differs from the checkpoint's",
            report.reinitialised,
        )
    elif plan.note and plan.pretrained != plan.finetuning and plan.finetuning is not None:
        logger.warning("Mask head: %s (pretrained %s, now %s).", plan.note, plan.pretrained, plan.finetuning)
    logger.info(report.text())
    logger.info("Loaded keys: %s", report.loaded)
    return report


def _describe_head(report: TransferReport, plan: _HeadPlan, num_classes: int | None) -> None:
    """Fill ``report.mask_head``: what became of each class channel."""
    if report.grown:
        action, kept = "grown", list(plan.pretrained)
    elif report.reinitialised:
        action, kept = "reinitialised", []
    else:
        action = "loaded"
        kept = plan.finetuning or plan.pretrained or [None] * (num_classes or 0)
    entries = []
    for channel, name in enumerate(kept):
        entry = {"channel": channel, "class": name}
        was = plan.pretrained[channel] if plan.pretrained and channel < len(plan.pretrained) else None
        if action == "loaded" and plan.finetuning and was is not None and was != name:
            entry["pretrained_class"] = was  # loaded by position under another name
        entries.append(entry)
    report.mask_head = {
        "action": action,
        "pretrained": plan.pretrained,
        "finetuning": plan.finetuning,
        "new_class_init": str(plan.rule),
        "kept": entries,
        "added": report.mask_head.get("added", []),
        "note": plan.note if action != "grown" else "",
    }
