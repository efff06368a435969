"""Next-scan choice by the hybrid model's disagreement across noise levels: a value by hand, and the ranking."""

from __future__ import annotations

import math

import pytest
import torch
from monai.inferers import SimpleInferer

from monai_hybrid.active_learning import noise_disagreement, rank_by_disagreement


class _ByTimestep(torch.nn.Module):
    """Mask logits that depend on the timestep only: [0, ln 3] at t = 0 (softmax 0.25, 0.75), [0, 0] above."""

    def forward(self, x, timesteps=None, output=None):
        assert output == "mask"
        logits = torch.zeros(x.shape[0], 2, *x.shape[2:])
        if not timesteps:
            logits[:, 1] = math.log(3.0)
        return logits


def test_disagreement_by_hand():
    image = torch.randn(1, 1, 8, 8)
    # two levels, probabilities (0.25, 0.75) and (0.5, 0.5): per class variance ((0.25 - 0.5) / 2) ** 2
    expected = 2 * ((0.25 - 0.5) / 2) ** 2
    score = noise_disagreement(_ByTimestep(), image, SimpleInferer(), timesteps=(0, 50))
    assert score == pytest.approx(expected)


def test_a_mask_that_ignores_the_noise_does_not_disagree():
    class Fixed(torch.nn.Module):
        def forward(self, x, timesteps=None, output=None):
            return torch.stack([torch.zeros_like(x[:, 0]), torch.ones_like(x[:, 0])], dim=1)

    assert noise_disagreement(Fixed(), torch.randn(1, 1, 8, 8), SimpleInferer()) == 0.0


def test_ranking_puts_the_most_uncertain_scan_first():
    scores = {"a": 0.1, "b": 0.7, "c": 0.3}
    ranked = rank_by_disagreement(list(scores), load=lambda name: name, score=lambda name: scores[name])
    assert [name for name, _ in ranked] == ["b", "c", "a"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="'image' must be"):
        noise_disagreement(_ByTimestep(), torch.randn(2, 1, 8, 8), SimpleInferer())
    with pytest.raises(ValueError, match="'timesteps' needs 0 first"):
        noise_disagreement(_ByTimestep(), torch.randn(1, 1, 8, 8), SimpleInferer(), timesteps=(50, 100))
