from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from monai_hybrid.losses import HybridLoss, PixelContrastiveLoss, pretraining_loss


def _batch(n=2, c=1, k=3, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, c + k, size, size, generator=g)
    target = {
        "image": torch.randn(n, c, size, size, generator=g),
        "label": torch.randint(0, k, (n, 1, size, size), generator=g),
    }
    return pred, target


def test_mask_weight_zero_gives_exactly_the_image_mse():
    pred, target = _batch()
    loss = HybridLoss(image_channels=1, image_weight=1.0, mask_weight=0.0)
    total = loss(pred, target)
    assert total == F.mse_loss(pred[:, :1], target["image"])
    assert set(loss.last_terms) == {"loss", "loss_image", "loss_mask"}


def test_image_mse_by_hand():
    pred = torch.zeros(1, 2, 2, 2)
    pred[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = {"image": torch.zeros(1, 1, 2, 2)}
    # (1 + 4 + 9 + 16) / 4 = 7.5
    assert HybridLoss(1, image_weight=2.0, mask_weight=1.0)(pred, target) == pytest.approx(15.0)


def test_weighted_sum_of_terms():
    pred, target = _batch(seed=1)
    loss = HybridLoss(1, image_weight=0.7, mask_weight=0.3)
    terms = loss.terms(pred, target)
    torch.testing.assert_close(terms["loss"], 0.7 * terms["loss_image"] + 0.3 * terms["loss_mask"])


def test_terms_follow_the_targets_present():
    pred, target = _batch()
    loss = HybridLoss(1)
    assert set(loss.terms(pred, {"label": target["label"]})) == {"loss", "loss_mask"}
    assert set(loss.terms(pred, {"image": target["image"]})) == {"loss", "loss_image"}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(image_channels=0), "'image_channels' must be a positive integer"),
        (dict(image_channels=1, image_weight=-1), "'image_weight' must be >= 0"),
        (dict(image_channels=1, mask_weight=float("nan")), "'mask_weight' must be >= 0"),
        (dict(image_channels=1, image_weight=0, mask_weight=0), "cannot both be 0"),
    ],
)
def test_hybrid_loss_argument_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HybridLoss(**kwargs)


def test_hybrid_loss_input_checks():
    pred, target = _batch()
    with pytest.raises(ValueError, match="'target' must be a dict"):
        HybridLoss(1)(pred, target["image"])
    with pytest.raises(ValueError, match="does the network return output 'all'"):
        HybridLoss(4)(pred, target)


def test_contrastive_loss_prefers_clustered_embeddings():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 1, 8, 8))
    onehot = F.one_hot(labels[:, 0], 3).permute(0, 3, 1, 2).float()
    clustered = F.normalize(onehot + 0.01 * torch.randn_like(onehot), dim=1)
    random = F.normalize(torch.randn(2, 3, 8, 8), dim=1)
    loss = PixelContrastiveLoss(temperature=0.07, pixels_per_class=16)
    assert loss(clustered, {"label": labels}) < loss(random, {"label": labels})


def test_contrastive_loss_by_hand():
    # Two pixels of class 0 at the same point, one of class 1 opposite: anchor 0's only positive is pixel 1.
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]).T.reshape(1, 2, 1, 3)
    labels = torch.tensor([0, 0, 1]).reshape(1, 1, 1, 3)
    tau = 0.5
    loss = PixelContrastiveLoss(temperature=tau, pixels_per_class=4)(z, labels)
    # anchors 0 and 1: -log(e^{2} / (e^{2} + e^{-2})); anchor 2 has no positive and is skipped
    expected = -torch.log(torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + torch.exp(torch.tensor(-2.0))))
    torch.testing.assert_close(loss, expected)


def test_contrastive_argument_checks():
    with pytest.raises(ValueError, match="'temperature' must be > 0"):
        PixelContrastiveLoss(temperature=0)
    with pytest.raises(ValueError, match="'pixels_per_class' must be an integer >= 2"):
        PixelContrastiveLoss(pixels_per_class=1)
    with pytest.raises(ValueError, match="needs labels"):
        PixelContrastiveLoss()(torch.randn(1, 2, 4, 4), {"label": None})


def test_pretraining_loss_per_mode():
    assert isinstance(pretraining_loss("contrastive", 1), PixelContrastiveLoss)
    assert pretraining_loss("supervised", 1).image_weight == 0.0
    assert pretraining_loss("diffusion", 1).mask_weight == 0.0
    hybrid = pretraining_loss("hybrid", 1, image_weight=1.0, mask_weight=0.25)
    assert (hybrid.image_weight, hybrid.mask_weight) == (1.0, 0.25)
    with pytest.raises(ValueError, match="'mode' got"):
        pretraining_loss("ssl", 1)


def test_fine_tuning_loss_passes_dice_settings_to_monai():
    """``loss#dice_ce_kwargs`` reaches MONAI's DiceCELoss: batch Dice sums each class over the batch, so a class
    absent from one sample and present in another is no longer rewarded for an empty prediction on the first."""
    from monai_hybrid.losses import finetuning_loss

    assert finetuning_loss(1, dice_ce_kwargs={"batch": True}).dice_ce.dice.batch is True
    assert finetuning_loss(1).dice_ce.dice.batch is False


def test_class_weights_name_classes_and_weight_dice_ce():
    """A rare class's weight multiplies its cross-entropy at its voxels and its Dice term, the others stay 1."""
    from monai_hybrid.losses import class_weight_tensor, finetuning_loss

    names = ["background", "tissue", "lesion"]
    assert class_weight_tensor(names, {}) is None and class_weight_tensor(names, None) is None
    assert class_weight_tensor(names, {"lesion": 20}).tolist() == [1.0, 1.0, 20.0]
    logits = torch.zeros(1, 4, 2, 2)  # one image channel, then three classes, all equally likely
    label = torch.tensor([[[[0, 1], [1, 2]]]]).float()
    plain = finetuning_loss(1, class_names=names).dice_ce.cross_entropy(logits[:, 1:], label[:, 0].long())
    weighted = finetuning_loss(1, class_names=names, class_weights={"lesion": 20.0})
    ce = weighted.dice_ce.cross_entropy(logits[:, 1:], label[:, 0].long())
    # CrossEntropyLoss with weights is the weighted mean: (1 + 1 + 1 + 20) * log 3 / (1 + 1 + 1 + 20)
    assert plain.item() == pytest.approx(math.log(3)) and ce.item() == pytest.approx(math.log(3))
    logits[0, 3, 1, 1] = -2.0  # the lesion voxel now less likely: the weighted loss rises by more
    rise_plain = finetuning_loss(1, class_names=names).dice_ce.cross_entropy(logits[:, 1:], label[:, 0].long())
    rise_weighted = weighted.dice_ce.cross_entropy(logits[:, 1:], label[:, 0].long())
    lesion = 2.0 + math.log(2.0 + math.exp(-2.0))  # -log softmax([0, 0, -2])[2], up from log 3
    assert rise_plain.item() == pytest.approx((3 * math.log(3) + lesion) / 4)
    assert rise_weighted.item() == pytest.approx((3 * math.log(3) + 20 * lesion) / 23)
    for bad, match in (
        ({"lesions": 2.0}, "names \\['lesions'\\], which are not in 'class_names'"),
        ({"lesion": 0.0}, "must be positive numbers"),
        (["lesion"], "must map class names to weights"),
    ):
        with pytest.raises(ValueError, match=match):
            finetuning_loss(1, class_names=names, class_weights=bad)
