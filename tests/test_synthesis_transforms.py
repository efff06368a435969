"""The synthesis label maps: intensity sub-clusters within each tissue, and partial-volume maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_hybrid.transforms import IntensitySubClustersd, RandPartialVolumed


def _phantom(spatial: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Background (0) on the left third, label 1 in the middle, label 2 on the right; the image rises along the
    second spatial axis inside each label, so each label has an intensity order to split by."""
    label = np.zeros((1, *spatial), dtype=np.uint8)
    third = spatial[0] // 3
    label[:, third : 2 * third] = 1
    label[:, 2 * third :] = 2
    ramp = np.linspace(0.0, 1.0, spatial[1], dtype=np.float32).reshape(1, 1, -1, *([1] * (len(spatial) - 2)))
    image = (label.astype(np.float32) + ramp).astype(np.float32)
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))
    return {"image": MetaTensor(torch.from_numpy(image), affine=affine), "label": MetaTensor(torch.from_numpy(label))}


@pytest.mark.parametrize("spatial", [(12, 30), (12, 30, 5), (12, 30, 1)])
def test_three_clusters_split_each_tissue_by_intensity(spatial):
    data = _phantom(spatial)
    out = IntensitySubClustersd("label", clusters=3, smooth_sigma=0.0)(data)
    sub, label, image = out["synthesis_labels"][0], data["label"][0], data["image"][0]
    assert isinstance(out["synthesis_labels"], MetaTensor) and out["synthesis_labels"].dtype == torch.uint8
    assert torch.equal(out["label"], data["label"])  # the label itself is left alone
    assert set(sub[label == 0].unique().tolist()) == {0}  # background kept whole
    for tissue, expected in ((1, [1, 2, 3]), (2, [4, 5, 6])):
        inside = sub[label == tissue]
        assert sorted(inside.unique().tolist()) == expected
        means = [float(image[sub == s].mean()) for s in expected]
        assert means == sorted(means) and len(set(means)) == 3  # sub-label 0 of a tissue is its darkest
        sizes = [int((inside == s).sum()) for s in expected]
        assert max(sizes) - min(sizes) <= inside.numel() // 10  # quantiles: about a third each


def test_smoothing_within_the_label_follows_its_structure_not_the_noise():
    data = _phantom((12, 30, 6))
    data["image"] = data["image"] + 0.3 * torch.randn(data["image"].shape, generator=torch.Generator().manual_seed(0))
    ramp = torch.linspace(0.0, 1.0, 30).reshape(1, 30, 1).expand(12, 30, 6)
    inside = data["label"][0] == 1  # 4 voxels wide: a blur across its borders would sort by the neighbours
    agreement = {}
    for sigma in (0.0, 1.0):
        sub = IntensitySubClustersd("label", clusters=3, smooth_sigma=sigma)(data)["synthesis_labels"][0]
        agreement[sigma] = np.corrcoef(sub[inside].float().numpy(), ramp[inside].numpy())[0, 1]
    assert agreement[0.0] < 0.8 < 0.9 < agreement[1.0]


def test_one_cluster_returns_the_label_map_unchanged():
    data = _phantom((12, 30, 4))
    for split_background in (False, True):
        out = IntensitySubClustersd("label", clusters=1, split_background=split_background)(data)
        assert torch.equal(out["synthesis_labels"], data["label"]) and out["synthesis_labels"].dtype == torch.uint8
        assert out["synthesis_labels"] is not data["label"]  # a copy: synthesis cannot write into the label


def test_split_background_numbers_every_label_from_zero():
    data = _phantom((12, 30))
    transform = IntensitySubClustersd("label", clusters=2, split_background=True, smooth_sigma=0.0)
    sub = transform(data)["synthesis_labels"][0]
    label = data["label"][0]
    assert [sorted(sub[label == v].unique().tolist()) for v in (0, 1, 2)] == [[0, 1], [2, 3], [4, 5]]
    assert transform.sub_label(2, 1) == 5
    assert IntensitySubClustersd("label", clusters=4).sub_label(3, 0) == 9  # 1 + (3 - 1) * 4


def test_many_sub_labels_widen_the_type():
    data = _phantom((12, 300))
    sub = IntensitySubClustersd("label", clusters=200, smooth_sigma=0.0)(data)["synthesis_labels"]
    assert sub.dtype == torch.int32 and int(sub.max()) == 400


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"clusters": 0}, "'clusters' must be an integer >= 1, got 0"),
        ({"clusters": 2.5}, "'clusters' must be an integer >= 1, got 2.5"),
        ({"clusters": True}, "'clusters' must be an integer >= 1"),
        ({"clusters": "3"}, "'clusters' must be an integer >= 1, got '3'"),
        ({"smooth_sigma": -1.0}, "'smooth_sigma' must be a number >= 0"),
        ({"split_background": "yes"}, "'split_background' must be true or false"),
        ({"output_key": ""}, "'image_key' and 'output_key' must be key names"),
    ],
)
def test_sub_cluster_arguments_are_checked_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IntensitySubClustersd("label", **kwargs)


def test_sub_cluster_inputs_are_checked():
    transform = IntensitySubClustersd("label", clusters=2)
    data = _phantom((12, 30, 4))
    with pytest.raises(ValueError, match="'image' .* and 'label' .* must share their spatial shape"):
        transform({**data, "image": data["image"][..., :2]})
    with pytest.raises(ValueError, match="'label' must hold non-negative integer labels"):
        transform({**data, "label": data["label"].float() - 1})
    with pytest.raises(ValueError, match=r"'label' must be a label map \(1, \*spatial\)"):
        transform({**data, "label": torch.cat([data["label"]] * 2)})
    with pytest.raises(KeyError, match="no image 'image'"):
        transform({"label": data["label"]})


def test_partial_volume_maps_mix_labels_at_their_borders_only():
    label = _phantom((30, 30, 6))["label"]  # borders between rows 9 and 10, 19 and 20
    out = RandPartialVolumed("label", sigma=(1.0, 1.0))({"label": label})["label"]
    assert out.shape == (3, 30, 30, 6) and out.dtype == torch.float32 and isinstance(out, MetaTensor)
    assert torch.allclose(out.sum(0), torch.ones(30, 30, 6))
    assert torch.equal(out.argmax(0), label[0].long())  # blurring does not move a border
    mixed = out.max(0).values < 1
    assert mixed[[9, 10, 19, 20]].all() and not mixed[[0, 4, 14, 25, 29]].any()  # at the borders only
    assert 0.2 < float(out[0, 9].mean()) < 0.8 and 0.2 < float(out[1, 9].mean()) < 0.8


def test_a_single_slice_is_not_blurred_through_its_thickness():
    label = _phantom((12, 30, 1))["label"]
    out = RandPartialVolumed("label", sigma=(1.0, 1.0))({"label": label})["label"]
    assert out.shape == (3, 12, 30, 1) and torch.equal(out.argmax(0), label[0].long())
    assert (out.max(0).values < 1).any()


def test_no_partial_volume_leaves_the_map_and_the_generator_alone():
    label = _phantom((12, 30, 4))["label"]
    state = torch.get_rng_state()
    out = RandPartialVolumed("label")({"label": label})["label"]
    assert out is label and torch.equal(torch.get_rng_state(), state)
    # a blur too small to change a value gives the label map back, not one-hot maps read as labels
    assert RandPartialVolumed("label", sigma=(1e-3, 1e-3))({"label": label})["label"] is label


def test_partial_volume_sigma_is_drawn_from_its_range():
    transform = RandPartialVolumed("label", sigma=2.0)
    torch.manual_seed(0)
    drawn = []
    for _ in range(20):
        transform.randomize()
        drawn.append(transform._sigma)
    assert 0.0 <= min(drawn) < max(drawn) <= 2.0


@pytest.mark.parametrize("sigma", [-1.0, (2.0, 1.0), (0.0, 1.0, 2.0), "1", True])
def test_partial_volume_sigma_is_checked_by_name(sigma):
    with pytest.raises(ValueError, match="'sigma' must be a number >= 0 or a range"):
        RandPartialVolumed("label", sigma=sigma)
