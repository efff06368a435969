from __future__ import annotations

import json

import pytest
import torch

from monai_hybrid.networks import HybridDiffusionUNet, WeightTransferError, transfer_weights

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_head_channels=8, norm_num_groups=8)


def _net(classes=4, **kw):
    torch.manual_seed(len(kw) + classes)
    return HybridDiffusionUNet(2, 1, classes, **{**TINY, **kw})


def test_same_architecture_loads_every_key():
    src, dst = _net(), _net(projection_dim=0)
    torch.nn.init.normal_(src.mask_head.conv.weight)
    report = transfer_weights(dst, src.state_dict())
    assert report.skipped == [] and report.reinitialised == []
    assert set(report.loaded) == set(src.state_dict())
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_mask_head_reinitialised_when_class_count_differs(tmp_path):
    src, dst = _net(classes=4), _net(classes=3)
    before = dst.mask_head.conv.weight.clone()
    path = tmp_path / "pre.pt"
    torch.save({"model": src.state_dict(), "optimizer": {}}, path)
    report = transfer_weights(dst, path)
    assert sorted(report.reinitialised) == ["mask_head.conv.bias", "mask_head.conv.weight"]
    assert torch.equal(dst.mask_head.conv.weight, before)
    assert torch.equal(dst.unet.conv_in.conv.weight, src.unet.conv_in.conv.weight)
    report.save(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["source"] == str(path)


def test_projection_head_is_skipped():
    src, dst = _net(projection_dim=5), _net()
    report = transfer_weights(dst, src.state_dict())
    assert report.skipped and all(k.startswith("projection_head.") for k in report.skipped)


def test_other_shape_mismatch_fails_naming_the_key():
    src, dst = _net(), _net(channels=(16, 16))
    with pytest.raises(WeightTransferError, match=r"shape mismatches: \['unet.conv_in.conv.weight: checkpoint"):
        transfer_weights(dst, src.state_dict())


def test_missing_and_unexpected_keys_fail():
    src, dst = _net(), _net()
    state = dict(src.state_dict())
    state.pop("unet.conv_in.conv.bias")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightTransferError) as info:
        transfer_weights(dst, state)
    assert "missing from the checkpoint: ['unet.conv_in.conv.bias']" in str(info.value)
    assert "unknown to the network: ['extra.weight']" in str(info.value)


def test_not_a_state_dict():
    with pytest.raises(WeightTransferError, match="neither a state dict"):
        transfer_weights(_net(), {"epoch": 3})
