from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_hybrid.sample_quality import compare_statistics, consistency_dice, save_pairs_montage, tissue_statistics

NAMES = ["background", "csf", "grey_matter", "white_matter"]


def test_consistency_dice_by_hand():
    labels = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    labels[0, 0, :2] = 1  # 8 pixels of class 1
    labels[0, 0, 2:, :2] = 2  # 4 pixels of class 2
    predicted = labels.clone()
    predicted[0, 0, 0] = 0  # 4 of the class-1 pixels missed
    dice = consistency_dice(labels, predicted, 4)
    assert dice.shape == (1, 3)
    assert dice[0, 0].item() == pytest.approx(2 * 4 / (8 + 4))  # 0.667
    assert dice[0, 1].item() == pytest.approx(1.0)
    assert math.isnan(dice[0, 2].item())  # class 3 absent from both


def test_consistency_dice_checks_shapes():
    with pytest.raises(ValueError, match="must both be \\(N, 1, \\*spatial\\)"):
        consistency_dice(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5), 4)


def test_tissue_statistics_by_hand():
    images = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    labels = torch.tensor([[[[1, 1], [2, 0]]]])
    stats = tissue_statistics(images, labels, NAMES)
    assert stats["csf"] == {"mean": 0.5, "std": 0.5, "share": 0.5}
    assert stats["grey_matter"]["mean"] == 2.0 and stats["background"]["share"] == 0.25
    assert math.isnan(stats["white_matter"]["mean"]) and stats["white_matter"]["share"] == 0.0
    table = compare_statistics(stats, stats)
    assert "| csf | 0.500 +- 0.500 | 0.500 +- 0.500 | 0.500 | 0.500 |" in table


def test_tissue_statistics_checks_shapes():
    with pytest.raises(ValueError, match="must have the same shape"):
        tissue_statistics(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 3)), NAMES)


def test_montage_is_written(tmp_path):
    images = torch.rand(3, 1, 16, 16) * 2 - 1
    labels = torch.randint(0, 4, (3, 1, 16, 16))
    save_pairs_montage(
        [("sampled", images, labels), ("real", images, labels)], str(tmp_path / "m.png"), NAMES, columns=4
    )
    assert (tmp_path / "m.png").stat().st_size > 1000
