"""Growing the mask head by appended classes: the trained classes keep their output channels, each new class gets a
channel initialised by a stated rule.

Fine-tuning whose ``class_names`` are the pretraining ``class_names`` followed by new names (``background, csf,
grey_matter, white_matter`` + ``lesion``) keeps what the mask head learned about the trained classes (a warm start)
instead of re-initialising the whole head. The rule for the new channels (``new_class_init``):

* ``"zero"``: zero weights, and a bias ``log(NEW_CLASS_PRIOR)`` below the lowest trained bias. The new logit is a
  constant: where the features vanish the new class gets a probability below ``NEW_CLASS_PRIOR / K`` (``K`` trained
  classes), and it wins only where every trained logit falls below that constant;
* ``"copy:<class>"``: the weights and bias of a trained class, the bias lowered by ``log(1 / NEW_CLASS_PRIOR)``: the
  new class starts as a faint copy of that class, with ``NEW_CLASS_PRIOR`` times its probability at every voxel (a
  white-matter lesion starts inside white matter), and never as the most probable class;
* ``"reinit"``: no growth; the whole mask head keeps its fresh initialisation (the behaviour before growth existed).

Adding a channel changes no ratio between the trained classes' probabilities (the softmax of the trained logits is
unchanged up to a common factor), so the trained classes' segmentation changes only where the new class wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

__all__ = ["NEW_CLASS_PRIOR", "NewClassRule", "appended_classes", "grow_rows", "grow_state_dict"]

#: The probability a new class starts with, relative to the trained classes (``zero``: at vanishing features, over
#: the trained classes; ``copy:<class>``: relative to that class): it starts absent, as a rare class should.
NEW_CLASS_PRIOR = 0.01

_RULES = "'zero', 'copy:<a pretrained class name>' or 'reinit'"


@dataclass(frozen=True)
class NewClassRule:
    """How the channel of a class appended at fine-tuning is initialised.

    Attributes:
        kind: ``"zero"``, ``"copy"`` or ``"reinit"``.
        source: the trained class copied (``copy`` only).
    """

    kind: str
    source: str | None = None

    @classmethod
    def parse(cls, value: object, argument: str = "new_class_init") -> NewClassRule:
        """The rule written as ``"zero"``, ``"copy:<class>"`` or ``"reinit"``.

        Raises:
            ValueError: anything else, naming ``argument`` and the valid forms.
        """
        text = value.strip() if isinstance(value, str) else None
        if text in ("zero", "reinit"):
            return cls(text)
        if text is not None and text.startswith("copy:") and text[len("copy:") :].strip():
            return cls("copy", text[len("copy:") :].strip())
        raise ValueError(f"'{argument}' must be {_RULES}; got {value!r}.")

    def __str__(self) -> str:
        return f"copy:{self.source}" if self.kind == "copy" else self.kind


def appended_classes(pretrained: Sequence[str], class_names: Sequence[str]) -> list[str] | None:
    """The names ``class_names`` appends to ``pretrained``.

    Returns:
        The new names (at least one), or ``None`` when ``class_names`` is not ``pretrained`` followed by new names
        (renamed, reordered, removed or identical classes).
    """
    pretrained, class_names = list(pretrained), list(class_names)
    if len(class_names) <= len(pretrained) or class_names[: len(pretrained)] != pretrained:
        return None
    added = class_names[len(pretrained) :]
    return added if not set(added) & set(pretrained) and len(set(added)) == len(added) else None


def grow_rows(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    pretrained: Sequence[str],
    class_names: Sequence[str],
    rule: NewClassRule,
) -> tuple[torch.Tensor, torch.Tensor | None, list[dict]]:
    """The output rows of a trained convolution, followed by one row per appended class.

    Args:
        weight: the trained weight, shape (K, C, *kernel), one row per class of ``pretrained``.
        bias: the trained bias, shape (K,), or ``None``.
        pretrained: the K trained class names, in channel order.
        class_names: ``pretrained`` followed by the new names (K + N).
        rule: the rule for the new rows (``zero`` or ``copy``).

    Returns:
        The weight (K + N, C, *kernel), the bias (K + N,) or ``None``, and one entry per new channel for the report
        (``channel``, ``class``, ``rule``, ``bias``, ``how``).

    Raises:
        ValueError: the shapes do not hold one row per trained class, ``class_names`` does not append to
            ``pretrained``, the rule is ``reinit``, or ``copy`` names no trained class.
    """
    added = appended_classes(pretrained, class_names)
    if added is None:
        raise ValueError(
            f"grow_rows: 'class_names' {list(class_names)} must be the pretrained classes {list(pretrained)} followed "
            "by new names."
        )
    k = len(pretrained)
    if weight.ndim < 2 or weight.shape[0] != k:
        raise ValueError(f"grow_rows: 'weight' must have {k} rows (one per trained class), got {tuple(weight.shape)}.")
    if bias is not None and tuple(bias.shape) != (k,):
        raise ValueError(f"grow_rows: 'bias' must have shape ({k},), got {tuple(bias.shape)}.")
    if rule.kind == "zero":
        row = torch.zeros_like(weight[:1])
        base = bias.min() if bias is not None else None
        how = f"weights 0, bias = lowest trained bias + log({NEW_CLASS_PRIOR})"
    elif rule.kind == "copy":
        if rule.source not in pretrained:
            raise ValueError(
                f"'new_class_init' copies '{rule.source}', which is no pretrained class; the pretrained classes are "
                f"{list(pretrained)}."
            )
        src = list(pretrained).index(rule.source)
        row = weight[src : src + 1].clone()
        base = bias[src] if bias is not None else None
        how = f"weights of '{rule.source}' (channel {src}), bias = its bias + log({NEW_CLASS_PRIOR})"
    else:
        raise ValueError(f"grow_rows: 'rule' must be 'zero' or 'copy:<class>' to grow, got '{rule}'.")
    n = len(added)
    grown_weight = torch.cat([weight, row.expand(n, *row.shape[1:])], dim=0)
    grown_bias, new_bias = None, None
    if bias is not None:
        new_bias = base + math.log(NEW_CLASS_PRIOR)
        grown_bias = torch.cat([bias, new_bias.reshape(1).expand(n)], dim=0)
    entries = [
        {
            "channel": k + i,
            "class": name,
            "rule": str(rule),
            "bias": None if new_bias is None else float(new_bias),
            "how": how if bias is not None else how.split(",")[0],
        }
        for i, name in enumerate(added)
    ]
    return grown_weight.contiguous(), None if grown_bias is None else grown_bias.contiguous(), entries


def grow_state_dict(
    state: Mapping[str, torch.Tensor],
    pretrained: Sequence[str],
    class_names: Sequence[str],
    rule: NewClassRule,
    head_prefix: str = "mask_head.",
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """A trained model's weights with its mask head grown by the classes ``class_names`` appends (``grow_rows`` on
    each convolution under ``head_prefix`` with one output row per trained class); every other tensor as it is.

    Args:
        state: the model's state dict.
        pretrained: its K classes, in channel order.
        class_names: ``pretrained`` followed by the new names.
        rule: the rule for the new rows (``zero`` or ``copy``).
        head_prefix: the keys of the mask head.

    Returns:
        The grown state dict and the report entries of the new channels.

    Raises:
        ValueError: no mask-head convolution with one row per trained class, or what ``grow_rows`` refuses.
    """
    grown, added = dict(state), []
    k = len(pretrained)
    for name, weight in state.items():
        if name.startswith(head_prefix) and name.endswith(".weight") and weight.ndim >= 2 and weight.shape[0] == k:
            bias_name = name[: -len("weight")] + "bias"
            new_weight, new_bias, added = grow_rows(weight, state.get(bias_name), pretrained, class_names, rule)
            grown[name] = new_weight
            if new_bias is not None:
                grown[bias_name] = new_bias
    if not added:
        raise ValueError(
            f"grow_state_dict: no '{head_prefix}' convolution with {k} output rows (one per class of "
            f"{list(pretrained)}) in the state dict."
        )
    return grown, added
