"""Fine-tuning in stages: which parameters train first, and when everything trains.

Two recipes for the smallest label budgets, both from the transfer-learning literature, as one Ignite handler:

* **head first, then everything** (linear probing then fine-tuning, Kumar et al., ICLR 2022): only the mask head trains
  until ``unfreeze_at``, then every parameter trains at the learning rate times ``unfrozen_lr_factor``;
* **input block and normalisation only** (a contrast change is an input-level shift): the first convolution, the
  first encoder level, every normalisation layer and the mask head train, the rest keeps its pretrained weights
  (for the whole run, or until ``unfreeze_at``).

A frozen parameter has ``requires_grad`` off, so it gets no gradient and PyTorch's optimisers (AdamW included) skip it,
weight decay too; the optimiser and its state are not rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from ignite.engine import Engine, Events
from torch import nn

from monai_hybrid.options import Trainable, choose

__all__ = ["StagedFineTuning", "Trainable", "trainable_parameters"]

logger = logging.getLogger(__name__)

_NORMS = (
    nn.GroupNorm,
    nn.LayerNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


def trainable_parameters(network: nn.Module, trainable: str) -> Iterator[tuple[str, nn.Parameter]]:
    """The named parameters of ``network`` that ``trainable`` lets train.

    Args:
        network: a ``HybridDiffusionUNet`` (modules ``unet.conv_in``, ``unet.down_blocks``, ``mask_head``), possibly
            wrapped (``DistributedDataParallel``'s ``module``).
        trainable: a ``Trainable`` value.

    Raises:
        ValueError: ``trainable`` is not a ``Trainable`` value, or ``network`` has no ``mask_head``.
    """
    trainable = choose(trainable, Trainable, "StagedFineTuning", "trainable")
    network = getattr(network, "module", network)
    if not hasattr(network, "mask_head"):
        raise ValueError(f"StagedFineTuning: the network ({type(network).__name__}) has no 'mask_head' module.")
    if trainable == Trainable.ALL:
        yield from network.named_parameters()
        return
    chosen = {"mask_head"}
    if trainable == Trainable.INPUT_NORM:
        chosen |= {"unet.conv_in", "unet.down_blocks.0"}
        chosen |= {name for name, module in network.named_modules() if isinstance(module, _NORMS)}
    for name, param in network.named_parameters():
        if any(name == c or name.startswith(f"{c}.") for c in chosen):
            yield name, param


class StagedFineTuning:
    """Trains only the ``trainable`` parameters until iteration ``unfreeze_at``, then every parameter, with the
    learning rate multiplied by ``unfrozen_lr_factor``.

    Args:
        network: the network the trainer trains.
        optimizer: its optimiser (every parameter in its groups, as the bundle builds it).
        trainable: ``Trainable`` value: the parameters that train in the first stage.
        unfreeze_at: the trainer iteration after which every parameter trains (``None``: the first stage lasts the
            whole run; ignored with ``trainable`` ``all``).
        unfrozen_lr_factor: the learning rate of every optimiser group (and the scheduler's base rates, so a cosine
            schedule continues from the scaled rate) is multiplied by it at ``unfreeze_at``.
        lr_scheduler: the run's learning-rate scheduler, whose ``base_lrs`` are scaled with the rates.

    A resumed run past ``unfreeze_at`` starts with every parameter trainable; its saved optimiser and scheduler
    already hold the scaled rates.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        trainable: str = Trainable.ALL,
        unfreeze_at: int | None = None,
        unfrozen_lr_factor: float = 1.0,
        lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> None:
        self.trainable = choose(trainable, Trainable, type(self).__name__, "trainable")
        if unfreeze_at is not None and (not isinstance(unfreeze_at, int) or unfreeze_at < 1):
            raise ValueError(
                f"StagedFineTuning: 'unfreeze_at' must be None or a positive integer, got {unfreeze_at!r}."
            )
        if not unfrozen_lr_factor > 0:
            raise ValueError(f"StagedFineTuning: 'unfrozen_lr_factor' must be positive, got {unfrozen_lr_factor!r}.")
        if isinstance(network, nn.parallel.DistributedDataParallel) and self.trainable != Trainable.ALL:
            raise ValueError(
                "StagedFineTuning: freezing parameters of a DistributedDataParallel model after it is wrapped breaks "
                "its gradient reduction; fine-tune in stages on one GPU ('trainable' all for multi-GPU runs)."
            )
        self.network = network
        self.optimizer = optimizer
        self.unfreeze_at = None if self.trainable == Trainable.ALL else unfreeze_at
        self.unfrozen_lr_factor = float(unfrozen_lr_factor)
        self.lr_scheduler = lr_scheduler
        list(trainable_parameters(network, self.trainable))  # names a network without a mask head now

    def attach(self, engine: Engine) -> None:
        """Freeze at the start of the run; unfreeze after iteration ``unfreeze_at``."""
        engine.add_event_handler(Events.STARTED, self.start)
        if self.unfreeze_at is not None:
            engine.add_event_handler(Events.ITERATION_COMPLETED(once=self.unfreeze_at), self.unfreeze)

    def start(self, engine: Engine) -> None:
        """The first stage, or every parameter for a run resumed past ``unfreeze_at``."""
        if self.trainable == Trainable.ALL or (
            self.unfreeze_at is not None and engine.state.iteration >= self.unfreeze_at
        ):
            self._set(Trainable.ALL)
            return
        n = self._set(self.trainable)
        until = f"until iteration {self.unfreeze_at}" if self.unfreeze_at is not None else "for the whole run"
        logger.info("Staged fine-tuning: %d parameter tensors (%s) train %s.", n, self.trainable.value, until)

    def unfreeze(self, engine: Engine) -> None:
        """Every parameter trains from the next iteration, the learning rates scaled by ``unfrozen_lr_factor``."""
        self._set(Trainable.ALL)
        for group in self.optimizer.param_groups:
            group["lr"] *= self.unfrozen_lr_factor
        if self.lr_scheduler is not None:
            self.lr_scheduler.base_lrs = [lr * self.unfrozen_lr_factor for lr in self.lr_scheduler.base_lrs]
        logger.info(
            "Staged fine-tuning: every parameter trains from iteration %d, learning rate x %s.",
            engine.state.iteration + 1,
            self.unfrozen_lr_factor,
        )

    def _set(self, trainable: Trainable) -> int:
        chosen = {name for name, _ in trainable_parameters(self.network, trainable)}
        network = getattr(self.network, "module", self.network)
        for name, param in network.named_parameters():
            param.requires_grad_(name in chosen)
        return len(chosen)
