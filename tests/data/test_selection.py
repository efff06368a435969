from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, Spacingd

from monai_hybrid.data import select_labeled
from monai_hybrid.transforms import SelectSliced


def _datalist(root):
    return root / "site_c_flair" / "datalist.json"


def test_same_seed_same_cases_and_record(tiny_phantom, tmp_path):
    root, _ = tiny_phantom
    a = select_labeled(_datalist(root), 1, "scans", seed=3, output_path=tmp_path / "cases.json")
    b = select_labeled(_datalist(root), 1, "scans", seed=3)
    assert a == b and len(a) == 1
    record = json.loads((tmp_path / "cases.json").read_text())
    assert record["cases"] == a and record["seed"] == 3 and record["unit"] == "scans"
    seeds = {select_labeled(_datalist(root), 1, "scans", seed=s)[0]["image"] for s in range(8)}
    assert len(seeds) == 2  # both training scans get drawn by some seed


def test_zero_takes_every_scan(tiny_phantom):
    root, _ = tiny_phantom
    assert len(select_labeled(_datalist(root), 0)) == 2


def test_slices_carry_a_world_height_inside_the_brain(tiny_phantom):
    root, _ = tiny_phantom
    cases = select_labeled(_datalist(root), 3, "slices", seed=0)
    assert len(cases) == 3 and all("slice_z_mm" in c for c in cases)
    assert len({(c["image"], c["slice_z_mm"]) for c in cases}) == 3


def test_errors():
    with pytest.raises(ValueError, match="'unit' got"):
        select_labeled("x.json", 1, "voxels")


def test_too_many_scans(tiny_phantom):
    root, _ = tiny_phantom
    with pytest.raises(ValueError, match="'num_labeled' is 5 but 'training'"):
        select_labeled(_datalist(root), 5)


def test_select_sliced_cuts_the_slice_at_the_world_height(tiny_phantom):
    root, _ = tiny_phantom
    case = select_labeled(_datalist(root), 1, "slices", seed=1)[0]
    load = Compose(
        [
            LoadImaged(keys=["image", "label"]),
            EnsureChannelFirstd(keys=["image", "label"]),
            Orientationd(keys=["image", "label"], axcodes="RAS"),
            Spacingd(keys=["image", "label"], pixdim=(6.0, 6.0, 6.0), mode=("bilinear", "nearest")),
        ]
    )
    data = load(case)
    out = SelectSliced(keys=["image", "label"])(data)
    assert out["image"].shape[-1] == 1 and out["label"].shape[1:3] == data["label"].shape[1:3]
    affine = np.asarray(data["image"].affine)
    k = int(round((case["slice_z_mm"] - affine[2, 3]) / affine[2, 2]))
    torch.testing.assert_close(out["label"][..., 0], data["label"][..., k])
    assert SelectSliced(keys=["image"])({"image": data["image"]})["image"].shape == data["image"].shape


def test_safe_spacingd_ignores_string_entries_named_like_meta(tiny_phantom):
    """MONAI Label passes ``image_path`` next to ``image``; MONAI's Spacingd calls ``.update`` on it."""
    from monai.transforms import Invertd

    from monai_hybrid.transforms import SafeSpacingd

    root, _ = tiny_phantom
    case = select_labeled(_datalist(root), 1, "scans", seed=0)[0]
    load = Compose([LoadImaged(keys="image"), EnsureChannelFirstd(keys="image")])
    data = {**load({"image": case["image"]}), "image_path": case["image"]}
    with pytest.raises(AttributeError):
        Spacingd(keys="image", pixdim=(3.0, 3.0, 3.0))(dict(data))
    spacing = SafeSpacingd(keys="image", pixdim=(3.0, 3.0, 3.0))
    out = spacing(dict(data))
    assert out["image_path"] == case["image"]
    np.testing.assert_allclose(np.abs(np.diag(np.asarray(out["image"].affine))[:3]), 3.0)
    back = Invertd(keys="image", transform=spacing, orig_keys="image")({**out, "image": out["image"]})
    assert back["image"].shape == data["image"].shape


def test_seeds_of_one_budget_label_other_cases(tiny_phantom):
    """A fixed permutation per budget: seed s takes block s, so the seeds of a budget never share a scan (while the
    list has scans left) nor a slice."""
    root, _ = tiny_phantom
    scans = [select_labeled(_datalist(root), 1, "scans", seed=s)[0]["image"] for s in range(2)]
    assert len(set(scans)) == 2  # the tiny phantom's two training scans, one per seed
    slices = [
        {(c["image"], c["slice_z_mm"]) for c in select_labeled(_datalist(root), 2, "slices", seed=s)} for s in range(4)
    ]
    assert all(len(s) == 2 for s in slices)
    assert len(set().union(*slices)) == 8  # disjoint slice sets
    # each seed's slices come from different scans, and a seed's block does not depend on the other seeds
    assert all(len({image for image, _ in s}) == 2 for s in slices)
    assert {(c["image"], c["slice_z_mm"]) for c in select_labeled(_datalist(root), 2, "slices", seed=3)} == slices[3]


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="'seed' must be a non-negative integer"):
        select_labeled("x.json", 1, "scans", seed=-1)
