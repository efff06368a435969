"""Contrast randomisation inside hybrid pretraining: the synthesis overlay's settings (intensity sub-clusters per
tissue, partial volume), their defaults that synthesise as bundle 0.6 did, and a hybrid pretraining on a user's
datalist with both switched on from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose, RandTorchIOd

from monai_hybrid.stacks import config_stack
from tests.conftest import three_class_datalist

from .conftest import BUNDLE
from .test_site_frictions import _bundle_command

_TINY = {"pixdim": [6.0, 6.0, 6.0], "roi_size": [32, 32], "samples_per_volume": 2}


def _parser(overlays=("synthesis",), **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in config_stack("pretrain", overlays)])
    for key, value in {"datalist": "datalist.json", **_TINY, **overrides}.items():
        parser[key] = value
    parser.parse()
    parser.get_parsed_content("imports")
    return parser


@pytest.fixture(scope="module")
def volume(tiny_phantom):
    """A source-site training volume, loaded and scaled as training does before synthesis."""
    site = tiny_phantom[0] / "site_a_t1w"
    entry = json.loads((site / "datalist.json").read_text())["training"][0]
    return Compose(_parser().get_parsed_content("load_transforms"))(
        {k: str(site / entry[k]) for k in ("image", "label")}
    )


def _synthesise(transforms, volume, seed: int) -> dict:
    torch.manual_seed(seed)  # the TorchIO transforms draw from torch's generator
    return Compose(transforms)({k: v.clone() for k, v in volume.items()})


def test_the_settings_are_declared_once_with_defaults_that_change_nothing():
    parser = _parser()
    assert parser.get_parsed_content("synthesis_clusters") == 1
    assert parser.get_parsed_content("synthesis_partial_volume") == 0.0
    names = [type(t).__name__ for t in parser.get_parsed_content("train#synthesis")]
    assert names[:4] == ["IntensitySubClustersd", "RandPartialVolumed", "RandTorchIOd", "DeleteItemsd"]
    for name in ("pretrain.yaml", "common.yaml", "3d.yaml", "intensity_augmentation.yaml"):
        assert "synthesis_clusters" not in (BUNDLE / "configs" / name).read_text(), name


def test_default_synthesis_draws_exactly_as_bundle_0_6(volume):
    """Bundle 0.6 drew intensities from the label map itself; the default (1 cluster, no partial volume) draws the
    same image from the same generator state."""
    synthesis = _parser().get_parsed_content("train#synthesis")
    before = RandTorchIOd(
        keys=["image", "label"],
        name="RandomLabelsToImage",
        label_key="label",
        label_keys=["label"],
        image_key="image",
        default_mean=[0.0, 1.0],
        default_std=[0.01, 0.1],
    )
    for seed in (0, 1):
        now = _synthesise(synthesis, volume, seed)
        then = _synthesise([before, *synthesis[4:]], volume, seed)
        assert set(now) == set(then) == {"image", "label"}
        assert torch.equal(torch.as_tensor(now["image"]), torch.as_tensor(then["image"]))
        assert torch.equal(torch.as_tensor(now["label"]), torch.as_tensor(volume["label"]))


def _between_share(image: np.ndarray, groups: np.ndarray) -> float:
    """Share of the variance of ``image`` explained by ``groups`` (the correlation ratio, eta squared)."""
    means = {g: image[groups == g].mean() for g in np.unique(groups)}
    between = sum((groups == g).sum() * (m - image.mean()) ** 2 for g, m in means.items()) / image.size
    return float(between / image.var())


def test_three_clusters_give_several_intensity_modes_within_one_label(volume):
    label = volume["label"][0].numpy()
    sub = _parser(synthesis_clusters=3).get_parsed_content("train#synthesis")[0](dict(volume))
    sub = sub["synthesis_labels"][0].numpy()
    shares = {}
    for clusters in (1, 3):
        synthesis = _parser(synthesis_clusters=clusters).get_parsed_content("train#synthesis")
        shares[clusters] = []
        for seed in range(4):
            image = _synthesise(synthesis, volume, seed)["image"][0].numpy()
            # the tissue whose synthesised intensities the sub-clusters explain best
            shares[clusters].append(max(_between_share(image[label == t], sub[label == t]) for t in (1, 2, 3)))
    # one Gaussian per tissue: the sub-clusters explain little (what they explain comes from the bias field and the
    # blur); three Gaussians: a mode each, for every seed
    assert np.mean(shares[1]) < 0.25 < 0.5 < np.mean(shares[3]), shares
    assert all(three > one for one, three in zip(shares[1], shares[3], strict=True)), shares


def test_the_synthesis_label_map_is_gone_before_the_crop(volume):
    parser = _parser(synthesis_clusters=3, synthesis_partial_volume=1.0)
    names = [type(t).__name__ for t in parser.get_parsed_content("train#preprocessing").transforms]
    assert names.index("DeleteItemsd") < names.index("RandCropByPosNegLabeld")
    transforms = [parser.get_parsed_content(f"train#{part}") for part in ("index_transforms", "synthesis", "crop")]
    torch.manual_seed(0)
    samples = Compose(sum(transforms, []))({k: v.clone() for k, v in volume.items()})
    assert len(samples) == 2 and all("synthesis_labels" not in s for s in samples)


@pytest.mark.slow
def test_hybrid_pretraining_with_clusters_and_partial_volume_from_the_command_line(bundle_root, tiny_phantom, tmp_path):
    datalist = three_class_datalist(tiny_phantom[0], "site_a_t1w", tmp_path / "mine")
    proc = _bundle_command(
        "pretrain",
        config_stack("pretrain", ["synthesis"]),
        bundle_root,
        **{
            "method#mode": "hybrid",
            "synthesis_clusters": 3,
            "synthesis_partial_volume": 1.0,
            "datalist": datalist,
            "class_names": ["background", "csf", "tissue"],
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    models = bundle_root / "models" / "pretrain"
    assert {"model.pt", "model_final.pt", "checkpoint_last.pt"} <= {p.name for p in models.iterdir()}
    last = torch.load(models / "checkpoint_last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2
