from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from monai_hybrid.data.datalist import datalist_class_names, read_datalist
from monai_hybrid.data.io import read_volume
from monai_hybrid.data.mr_physics import TISSUES
from monai_hybrid.data.phantom import (
    DATALIST_FILE,
    MONTAGE_FILE,
    SUMMARY_FILE,
    PhantomConfig,
    ensure_phantom,
    generate_phantom,
    render_subject,
)
from monai_hybrid.data.sites import DEFAULT_SITES, ListSizes, Site, site_by_name
from tests.conftest import TINY_RESOLUTION, tiny_config


def _site_index(name: str) -> int:
    return [s.name for s in DEFAULT_SITES].index(name)


def test_same_seed_gives_identical_arrays():
    cfg = tiny_config(seed=3)
    a_img, a_lab, a_aff = render_subject(cfg, 2, 1)
    b_img, b_lab, b_aff = render_subject(cfg, 2, 1)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    np.testing.assert_array_equal(a_aff, b_aff)


def test_other_seed_or_subject_differs():
    img, lab, _ = render_subject(tiny_config(seed=3), 0, 1)
    assert not np.array_equal(img, render_subject(tiny_config(seed=4), 0, 1)[0])
    assert not np.array_equal(lab, render_subject(tiny_config(seed=3), 0, 2)[1])


def test_subjects_differ_in_anatomy():
    """Subjects are not near-copies: their label maps disagree on a good share of brain voxels."""
    cfg = tiny_config(seed=0)
    labels = [render_subject(cfg, 0, i)[1] for i in range(3)]
    for i in range(3):
        for j in range(i + 1, 3):
            brain = (labels[i] > 0) | (labels[j] > 0)
            disagreement = np.mean(labels[i][brain] != labels[j][brain])
            assert disagreement > 0.1


def test_label_values_in_range_without_and_with_lesions():
    _, lab, _ = render_subject(tiny_config(), 0, 0)
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    cfg = PhantomConfig(seed=0, resolution=3.0, lesions=True)
    found = [np.unique(render_subject(cfg, 2, i)[1]) for i in range(4)]  # lesions are drawn at target sites only
    assert all(v.max() <= 4 for v in found)
    assert any(4 in v for v in found), "no subject of four had a lesion"


def test_datalists_are_disjoint_and_files_exist(tiny_phantom):
    root, summary = tiny_phantom
    for site in summary["sites"]:
        datalist = json.loads((root / site["datalist"]).read_text())
        images = [e["image"] for k in ("training", "validation", "test", "unlabeled") for e in datalist[k]]
        assert len(images) == len(set(images))
        assert len(datalist["training"]) == site["subjects"]["training"]
        for key in ("training", "validation", "test"):
            for entry in datalist[key]:
                assert (root / site["name"] / entry["image"]).is_file()
                assert (root / site["name"] / entry["label"]).is_file()
        for entry in datalist["unlabeled"]:
            assert set(entry) == {"image"}


def test_summary_describes_sites(tiny_phantom):
    root, summary = tiny_phantom
    on_disk = json.loads((root / SUMMARY_FILE).read_text())
    assert on_disk == summary
    assert summary["class_names"] == ["background", "csf", "grey_matter", "white_matter"]
    roles = [s["role"] for s in summary["sites"]]
    assert roles.count("source") == 1 and roles.count("target") == 3
    contrasts = {s["contrast"] for s in summary["sites"]}
    assert contrasts == {"T1w", "T2w", "FLAIR", "PD"}
    for site in summary["sites"]:
        assert all(site["voxel_counts"][c] > 0 for c in summary["class_names"])
    assert (root / MONTAGE_FILE).stat().st_size > 10_000


def test_affine_and_spacing_round_trip_nibabel_and_simpleitk(tiny_phantom):
    root, summary = tiny_phantom
    for site in summary["sites"]:
        entry = json.loads((root / site["datalist"]).read_text())["training"][0]
        path = root / site["name"] / entry["image"]
        nifti = nib.load(str(path))
        np.testing.assert_allclose(nifti.header.get_zooms()[:3], site["spacing_mm"], rtol=1e-5)
        assert list(nifti.shape) == site["shape"]
        itk = sitk.ReadImage(str(path))
        np.testing.assert_allclose(itk.GetSpacing(), site["spacing_mm"], rtol=1e-5)
        # ITK's world is LPS: the same affine after flipping x and y.
        direction = np.asarray(itk.GetDirection()).reshape(3, 3)
        itk_affine = np.eye(4)
        itk_affine[:3, :3] = direction @ np.diag(itk.GetSpacing())
        itk_affine[:3, 3] = itk.GetOrigin()
        np.testing.assert_allclose(np.diag([-1, -1, 1, 1]) @ itk_affine, nifti.affine, atol=1e-4)
        np.testing.assert_array_equal(np.asarray(nifti.dataobj), read_volume(path).array)
        assert site["orientation"] == "".join(nib.aff2axcodes(nifti.affine))


def _mean_by_class(name: str, resolution: float = 3.0) -> dict[int, float]:
    img, lab, _ = render_subject(PhantomConfig(seed=1, resolution=resolution), _site_index(name), 0)
    return {k: float(img[lab == k].mean()) for k in (1, 2, 3)}


def test_flair_csf_is_darker_than_grey_matter_and_contrast_order_differs_from_t1w():
    flair = _mean_by_class("site_c_flair")
    t1w = _mean_by_class("site_a_t1w")
    assert flair[1] < 0.6 * flair[2] and flair[1] < 0.6 * flair[3]  # CSF is nulled
    assert t1w[1] < t1w[2] < t1w[3]  # CSF < GM < WM
    # Pure-tissue signals: T1w orders CSF < GM < WM, FLAIR CSF < WM < GM, so no monotone intensity mapping
    # turns one contrast into the other.
    pure = {
        s.contrast: [s.sequence.signal(TISSUES[t]) for t in ("csf", "grey_matter", "white_matter")]
        for s in DEFAULT_SITES
    }
    assert np.argsort(pure["T1w"]).tolist() == [0, 1, 2]
    assert np.argsort(pure["FLAIR"]).tolist() == [0, 2, 1]


def test_t2w_csf_is_brightest():
    t2w = _mean_by_class("site_b_t2w")
    assert t2w[3] < t2w[2] < t2w[1]


def test_resolution_sets_the_grid():
    img3, _, aff3 = render_subject(PhantomConfig(resolution=3.0), 0, 0)
    assert img3.shape == (53, 64, 53)
    np.testing.assert_allclose(np.abs(np.diag(aff3)[:3]), 3.0)


def test_generate_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("not a phantom")
    with pytest.raises(FileExistsError, match="does not hold a phantom"):
        generate_phantom(tmp_path, tiny_config(), workers=1, progress=False)


def test_generate_refuses_to_overwrite_without_flag(tiny_phantom):
    root, _ = tiny_phantom
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_phantom(root, tiny_config(), workers=1, progress=False)


def test_ensure_phantom_reuses_an_identical_phantom(tiny_phantom, tmp_path, monkeypatch):
    # a phantom whose recorded config is the one ensure_phantom would build (default sizes, 6 mm, seed 0)
    root = tmp_path / "phantom"
    shutil.copytree(tiny_phantom[0], root)
    summary = json.loads((root / SUMMARY_FILE).read_text())
    summary["config"] = PhantomConfig(seed=0, resolution=TINY_RESOLUTION).to_json()
    (root / SUMMARY_FILE).write_text(json.dumps(summary))

    def no_generation(*args, **kwargs):
        raise AssertionError("an identical phantom was regenerated")

    monkeypatch.setattr("monai_hybrid.data.phantom.generate_phantom", no_generation)
    assert ensure_phantom(root, seed=0, resolution=TINY_RESOLUTION) == root


def test_ensure_phantom_regenerates_a_phantom_made_with_other_settings(tiny_phantom, monkeypatch):
    root, _ = tiny_phantom  # made with other list sizes than ensure_phantom's defaults
    calls = []
    monkeypatch.setattr("monai_hybrid.data.phantom.generate_phantom", lambda *a, **k: calls.append(k))
    ensure_phantom(root, seed=0, resolution=TINY_RESOLUTION)
    assert len(calls) == 1 and calls[0]["overwrite"] is True


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("monai_hybrid.data.phantom._write_montage", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_phantom(tmp_path / "out", tiny_config(), workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_config_and_site_validation_messages():
    with pytest.raises(ValueError, match="'resolution'"):
        PhantomConfig(resolution=0.1)
    with pytest.raises(ValueError, match="'seed'"):
        PhantomConfig(seed=-1)
    with pytest.raises(ValueError, match="'training'"):
        ListSizes(training=0, validation=1, test=1)
    with pytest.raises(ValueError, match="'orientation'"):
        Site(**{**site_by_name("site_a_t1w").__dict__, "orientation": "XYZ"})
    with pytest.raises(KeyError, match="site_a_t1w"):
        site_by_name("nope")


def test_each_site_datalist_lists_its_subjects_and_labels_the_classes(tiny_phantom):
    root, summary = tiny_phantom
    for site in summary["sites"]:
        path = root / site["datalist"]
        assert path.name == DATALIST_FILE
        datalist = read_datalist(path)
        assert {k: len(datalist.get(k, [])) for k in site["subjects"]} == site["subjects"], site["name"]
        assert datalist_class_names(path) == tuple(summary["class_names"])
