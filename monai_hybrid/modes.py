"""The pretraining modes: one network, optimiser and step count, four objectives (docs/method.md, "The modes").

| mode          | network input        | loss terms                         | labels |
|---------------|----------------------|------------------------------------|--------|
| ``hybrid``      | noisy ``x_t``, random t | image (MSE) + mask (Dice-CE)       | yes    |
| ``supervised``  | clean ``x``, t = 0      | mask (Dice-CE)                     | yes    |
| ``diffusion``   | noisy ``x_t``, random t | image (MSE)                        | no     |
| ``contrastive`` | clean ``x``, t = 0      | pixel contrastive on decoder features through a projection head | yes |
"""

from __future__ import annotations

from dataclasses import dataclass

from monai_hybrid.options import NetworkOutput

__all__ = ["PretrainingMode", "MODES", "get_mode"]


@dataclass(frozen=True)
class PretrainingMode:
    """What a mode feeds the network and which losses it trains.

    Attributes:
        name: the mode's config value.
        noised: inputs are noised at a random timestep (else clean, t = 0).
        image_loss: the image head is trained (denoising).
        mask_loss: the mask head is trained (Dice-CE).
        contrastive: the projection head is trained with the pixel contrastive loss.
    """

    name: str
    noised: bool
    image_loss: bool
    mask_loss: bool
    contrastive: bool = False

    @property
    def uses_labels(self) -> bool:
        return self.mask_loss or self.contrastive

    @property
    def network_output(self) -> NetworkOutput:
        """The network output the training inferer asks for."""
        return NetworkOutput.PROJECTION if self.contrastive else NetworkOutput.ALL


MODES: dict[str, PretrainingMode] = {
    "hybrid": PretrainingMode("hybrid", noised=True, image_loss=True, mask_loss=True),
    "supervised": PretrainingMode("supervised", noised=False, image_loss=False, mask_loss=True),
    "diffusion": PretrainingMode("diffusion", noised=True, image_loss=True, mask_loss=False),
    "contrastive": PretrainingMode("contrastive", noised=False, image_loss=False, mask_loss=False, contrastive=True),
}


def get_mode(name: str | PretrainingMode, owner: str = "mode") -> PretrainingMode:
    """The mode called ``name``.

    Raises:
        ValueError: naming ``owner`` and the valid modes when ``name`` is unknown.
    """
    if isinstance(name, PretrainingMode):
        return name
    from monai_hybrid.options import choose

    return choose(name, MODES, owner, "mode")
