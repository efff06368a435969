"""Growing the mask head by appended classes: the grow rule on tensors, and through transfer_weights on the network."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from monai_hybrid.model_settings import save_model_settings
from monai_hybrid.networks import (
    NEW_CLASS_PRIOR,
    HybridDiffusionUNet,
    NewClassRule,
    appended_classes,
    grow_rows,
    transfer_weights,
)

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_head_channels=8, norm_num_groups=8)
TISSUES = ["background", "csf", "grey_matter", "white_matter"]
WITH_LESION = [*TISSUES, "lesion"]
HEAD = ["mask_head.conv.bias", "mask_head.conv.weight"]


def _net(classes: int, seed: int) -> HybridDiffusionUNet:
    torch.manual_seed(seed)
    return HybridDiffusionUNet(2, 1, classes, **TINY)


# ---- the rule --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, source",
    [("zero", "zero", None), ("reinit", "reinit", None), ("copy:white_matter", "copy", "white_matter")],
)
def test_rule_parses(text, kind, source):
    rule = NewClassRule.parse(text)
    assert (rule.kind, rule.source, str(rule)) == (kind, source, text)


@pytest.mark.parametrize("bad", ["zeros", "copy:", "copy", "", None, 3])
def test_rule_refuses_other_values_naming_the_setting(bad):
    with pytest.raises(ValueError, match=r"'new_class_init' must be 'zero', 'copy:<a pretrained class name>'"):
        NewClassRule.parse(bad)


def test_appended_classes():
    assert appended_classes(TISSUES, WITH_LESION) == ["lesion"]
    assert appended_classes(["a", "b"], ["a", "b", "c", "d"]) == ["c", "d"]
    assert appended_classes(TISSUES, TISSUES) is None  # nothing added
    assert appended_classes(TISSUES, ["background", "lesion", "csf", "grey_matter", "white_matter"]) is None
    assert appended_classes(TISSUES, ["background", "csf", "tissue", "white_matter", "lesion"]) is None  # renamed
    assert appended_classes(TISSUES, TISSUES[:3]) is None  # removed
    assert appended_classes(["a", "b"], ["a", "b", "a"]) is None  # a trained name again
    assert appended_classes(["a", "b"], ["a", "b", "c", "c"]) is None  # a new name twice


def _trained():
    """A trained 1x1 convolution of 3 classes over 2 features: weight (3, 2, 1, 1), bias (3,)."""
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).reshape(3, 2, 1, 1)
    bias = torch.tensor([0.5, -1.0, 2.0])
    return weight, bias


def test_zero_rule_keeps_the_trained_rows_and_adds_zero_weights_below_the_lowest_bias():
    weight, bias = _trained()
    grown_w, grown_b, added = grow_rows(weight, bias, ["bg", "a", "b"], ["bg", "a", "b", "new"], NewClassRule("zero"))
    assert grown_w.shape == (4, 2, 1, 1) and grown_b.shape == (4,)
    assert torch.equal(grown_w[:3], weight) and torch.equal(grown_b[:3], bias)
    assert torch.equal(grown_w[3], torch.zeros(2, 1, 1))
    # the lowest trained bias is -1.0 (class a): -1.0 + log(0.01) = -5.6052
    assert grown_b[3].item() == pytest.approx(-1.0 + math.log(0.01), abs=1e-6)
    assert added == [
        {
            "channel": 3,
            "class": "new",
            "rule": "zero",
            "bias": pytest.approx(-5.605170, abs=1e-5),
            "how": "weights 0, bias = lowest trained bias + log(0.01)",
        }
    ]


def test_zero_rule_starts_the_new_class_below_the_prior_where_features_vanish():
    weight, bias = _trained()
    grown_w, grown_b, _ = grow_rows(weight, bias, ["bg", "a", "b"], ["bg", "a", "b", "new"], NewClassRule("zero"))
    logits = torch.nn.functional.conv2d(torch.zeros(1, 2, 1, 1), grown_w, grown_b)
    probability = torch.softmax(logits, dim=1)[0, 3, 0, 0].item()
    # exp(-1 + log 0.01) / (exp(0.5) + exp(-1) + exp(2) + 0.01 exp(-1)) = 0.0036788 / 9.40934
    assert probability == pytest.approx(3.90973e-4, rel=1e-5)
    assert probability < NEW_CLASS_PRIOR / 3


def test_copy_rule_copies_the_named_class_with_its_bias_lowered_by_the_log_prior():
    weight, bias = _trained()
    grown_w, grown_b, added = grow_rows(
        weight, bias, ["bg", "a", "b"], ["bg", "a", "b", "n1", "n2"], NewClassRule("copy", "b")
    )
    assert torch.equal(grown_w[:3], weight) and torch.equal(grown_b[:3], bias)
    assert torch.equal(grown_w[3], torch.tensor([5.0, 6.0]).reshape(2, 1, 1))
    assert torch.equal(grown_w[4], grown_w[3])
    assert grown_b[3].item() == grown_b[4].item() == pytest.approx(2.0 + math.log(0.01), abs=1e-6)
    assert [(a["channel"], a["class"], a["rule"]) for a in added] == [(3, "n1", "copy:b"), (4, "n2", "copy:b")]
    assert added[0]["how"] == "weights of 'b' (channel 2), bias = its bias + log(0.01)"


def test_copy_rule_gives_the_new_class_a_hundredth_of_its_source_and_keeps_every_argmax():
    weight, bias = _trained()
    grown_w, grown_b, _ = grow_rows(weight, bias, ["bg", "a", "b"], ["bg", "a", "b", "new"], NewClassRule("copy", "a"))
    features = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    before = torch.softmax(torch.nn.functional.conv2d(features, weight, bias), dim=1)
    after = torch.softmax(torch.nn.functional.conv2d(features, grown_w, grown_b), dim=1)
    torch.testing.assert_close(after[:, 3], NEW_CLASS_PRIOR * after[:, 1])
    assert torch.equal(after.argmax(dim=1), before.argmax(dim=1))


def test_grow_rows_without_bias():
    weight, _ = _trained()
    grown_w, grown_b, added = grow_rows(weight, None, ["bg", "a", "b"], ["bg", "a", "b", "c"], NewClassRule("zero"))
    assert grown_b is None and torch.equal(grown_w[3], torch.zeros(2, 1, 1))
    assert added[0]["bias"] is None and added[0]["how"] == "weights 0"


def test_grow_rows_refuses_bad_input():
    weight, bias = _trained()
    names = ["bg", "a", "b"]
    with pytest.raises(ValueError, match=r"copies 'white_matter', which is no pretrained class; .*\['bg', 'a', 'b'\]"):
        grow_rows(weight, bias, names, [*names, "c"], NewClassRule("copy", "white_matter"))
    with pytest.raises(ValueError, match="must be the pretrained classes"):
        grow_rows(weight, bias, names, ["a", "bg", "b", "c"], NewClassRule("zero"))
    with pytest.raises(ValueError, match=r"'weight' must have 3 rows"):
        grow_rows(weight[:2], bias, names, [*names, "c"], NewClassRule("zero"))
    with pytest.raises(ValueError, match=r"'bias' must have shape \(3,\)"):
        grow_rows(weight, bias[:2], names, [*names, "c"], NewClassRule("zero"))
    with pytest.raises(ValueError, match="'zero' or 'copy:<class>' to grow"):
        grow_rows(weight, bias, names, [*names, "c"], NewClassRule("reinit"))


# ---- through transfer_weights on the network ------------------------------------------------------------------------


def test_transfer_grows_the_mask_head_keeping_the_trained_channels():
    src, dst = _net(4, seed=0), _net(5, seed=1)
    torch.nn.init.normal_(src.mask_head.conv.bias)
    report = transfer_weights(dst, src.state_dict(), class_names=WITH_LESION, pretrained_class_names=TISSUES)
    trained_w, trained_b = src.mask_head.conv.weight, src.mask_head.conv.bias
    assert torch.equal(dst.mask_head.conv.weight[:4], trained_w) and torch.equal(dst.mask_head.conv.bias[:4], trained_b)
    assert torch.equal(dst.mask_head.conv.weight[4], torch.zeros_like(trained_w[0]))
    assert dst.mask_head.conv.bias[4].item() == pytest.approx(trained_b.min().item() + math.log(0.01), abs=1e-6)
    assert torch.equal(dst.unet.conv_in.conv.weight, src.unet.conv_in.conv.weight)
    assert report.grown == HEAD and report.reinitialised == []
    assert set(report.loaded) == set(src.state_dict()) - set(HEAD)
    head = report.mask_head
    assert head["action"] == "grown" and head["new_class_init"] == "zero" and head["note"] == ""
    assert head["kept"] == [{"channel": i, "class": n} for i, n in enumerate(TISSUES)]
    assert [(a["channel"], a["class"], a["rule"]) for a in head["added"]] == [(4, "lesion", "zero")]


def _settings(class_names):
    return {
        "class_names": class_names,
        "in_channels": 1,
        "spatial_dims": 2,
        "pixdim": [6.0, 6.0, 6.0],
        "roi_size": [32, 32],
        "divisible_k": [16, 16, 1],
        "network_args": {"channels": [8, 16]},
        "intensity": {"lower": 0.5, "upper": 99.5, "b_min": -1.0, "b_max": 1.0},
    }


def test_transfer_reads_the_pretrained_classes_beside_the_checkpoint(tmp_path):
    src, dst = _net(4, seed=0), _net(5, seed=1)
    path = tmp_path / "pretrain" / "model_final.pt"
    save_model_settings(_settings(TISSUES), path.parent)
    torch.save({"model": src.state_dict()}, path)
    report = transfer_weights(dst, path, class_names=WITH_LESION, new_class_init="copy:white_matter")
    assert torch.equal(dst.mask_head.conv.weight[:4], src.mask_head.conv.weight)
    assert torch.equal(dst.mask_head.conv.weight[4], src.mask_head.conv.weight[3])
    assert dst.mask_head.conv.bias[4].item() == pytest.approx(src.mask_head.conv.bias[3].item() + math.log(0.01))
    report.save(tmp_path / "weight_transfer.json")
    saved = json.loads((tmp_path / "weight_transfer.json").read_text())
    assert saved["grown"] == HEAD and saved["mask_head"]["pretrained"] == TISSUES
    assert saved["mask_head"]["added"][0]["class"] == "lesion" and saved["mask_head"]["added"][0]["rule"] == (
        "copy:white_matter"
    )


def test_transfer_without_recorded_classes_reinitialises_as_before(tmp_path, caplog):
    src, dst = _net(4, seed=0), _net(5, seed=1)
    fresh = dst.mask_head.conv.weight.clone()
    path = tmp_path / "model.pt"
    torch.save({"model": src.state_dict()}, path)
    with caplog.at_level(logging.WARNING):
        report = transfer_weights(dst, path, class_names=WITH_LESION)
    assert sorted(report.reinitialised) == HEAD and report.grown == []
    assert torch.equal(dst.mask_head.conv.weight, fresh)
    assert report.mask_head["action"] == "reinitialised" and report.mask_head["pretrained"] is None
    assert "pretrained classes are unknown" in report.mask_head["note"] and "unknown" in caplog.text


@pytest.mark.parametrize(
    "names, rule, note",
    [
        (["background", "lesion", "csf", "grey_matter", "white_matter"], "zero", "not the pretrained ones followed"),
        (WITH_LESION, "reinit", "new_class_init is 'reinit'"),
    ],
)
def test_transfer_reinitialises_when_classes_are_not_appended_or_asked(names, rule, note):
    src, dst = _net(4, seed=0), _net(5, seed=1)
    fresh = dst.mask_head.conv.weight.clone()
    report = transfer_weights(
        dst, src.state_dict(), class_names=names, pretrained_class_names=TISSUES, new_class_init=rule
    )
    assert sorted(report.reinitialised) == HEAD and report.grown == []
    assert torch.equal(dst.mask_head.conv.weight, fresh)
    assert report.mask_head["action"] == "reinitialised" and note in report.mask_head["note"]
    assert report.mask_head["kept"] == [] and report.mask_head["added"] == []


def test_transfer_with_renamed_classes_of_the_same_count_loads_by_position_and_says_so(caplog):
    src, dst = _net(4, seed=0), _net(4, seed=1)
    renamed = ["background", "csf", "cortex", "white_matter"]
    with caplog.at_level(logging.WARNING):
        report = transfer_weights(dst, src.state_dict(), class_names=renamed, pretrained_class_names=TISSUES)
    assert torch.equal(dst.mask_head.conv.weight, src.mask_head.conv.weight)
    assert report.mask_head["action"] == "loaded" and "loaded by position" in report.mask_head["note"]
    assert report.mask_head["kept"][2] == {"channel": 2, "class": "cortex", "pretrained_class": "grey_matter"}
    assert "loaded by position" in caplog.text


def test_transfer_refuses_class_names_of_another_count_than_the_network():
    with pytest.raises(ValueError, match=r"names 4 classes, but the network has 5 mask channels"):
        transfer_weights(_net(5, seed=1), _net(4, seed=0).state_dict(), class_names=TISSUES)


def test_transfer_refuses_an_unknown_rule_before_loading():
    with pytest.raises(ValueError, match="'new_class_init' must be"):
        transfer_weights(_net(5, seed=1), "no/such/file.pt", class_names=WITH_LESION, new_class_init="random")
