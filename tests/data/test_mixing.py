from __future__ import annotations

import pytest

from monai_hybrid.data import add_sampled_pairs, mixing_weights


def test_weights_give_the_pairs_their_share():
    w = mixing_weights(2, 8, 0.2)
    assert w[:2] == [0.4, 0.4] and w[2:] == pytest.approx([0.025] * 8)
    assert sum(w) == pytest.approx(1.0)


def test_weights_are_uniform_without_pairs():
    assert mixing_weights(3, 0, 0.5) == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "args,message",
    [
        ((0, 4, 0.5), "'num_labelled' must be >= 1"),
        ((1, -1, 0.5), "'num_sampled' must be >= 0"),
        ((1, 4, 1.0), "'sampled_share' must be in [0, 1)"),
        ((1, 4, -0.1), "'sampled_share' must be in [0, 1)"),
    ],
)
def test_weight_arguments_are_checked(args, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)").replace("(", r"\(")):
        mixing_weights(*args)


def test_pairs_follow_the_labelled_cases_with_their_keys():
    scans = [{"image": "a.nii.gz", "label": "a_dseg.nii.gz"}]
    slices = [{"image": "a.nii.gz", "label": "a_dseg.nii.gz", "slice_z_mm": 12.0}]
    pairs = [{"image": "s0.nii.gz", "label": "s0_dseg.nii.gz"}]
    assert add_sampled_pairs(scans, pairs) == scans + pairs
    assert add_sampled_pairs(slices, pairs)[1] == {**pairs[0], "slice_z_mm": 0.0}


def test_a_pair_without_label_is_refused():
    with pytest.raises(ValueError, match="sampled entry 0 needs 'image' and 'label'"):
        add_sampled_pairs([{"image": "a", "label": "b"}], [{"image": "s0.nii.gz"}])
