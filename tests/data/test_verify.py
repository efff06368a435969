"""One test per verification message, on tiny synthetic NIfTI files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from monai_hybrid.cli import main
from monai_hybrid.data.verify import DatalistError, verify_datalist


def _save(path, array, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine), str(path))
    return path.name


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        _save(tmp_path / f"img{i}.nii.gz", rng.normal(size=(8, 8, 8)).astype(np.float32))
        _save(tmp_path / f"lab{i}.nii.gz", rng.integers(0, 3, size=(8, 8, 8)).astype(np.uint8))
    return tmp_path


def _write(folder, **lists):
    path = folder / "datalist.json"
    path.write_text(json.dumps(lists))
    return path


def _entry(i):
    return {"image": f"img{i}.nii.gz", "label": f"lab{i}.nii.gz"}


def _problems(path, **kwargs):
    with pytest.raises(DatalistError) as info:
        verify_datalist(path, **kwargs)
    return info.value


def test_valid_datalist_reports_counts_and_values(folder):
    path = _write(folder, training=[_entry(0), _entry(1)], validation=[_entry(2)], unlabeled=[{"image": "img3.nii.gz"}])
    report = verify_datalist(path, num_classes=3)
    assert report.counts == {"training": 2, "validation": 1, "unlabeled": 1}
    assert report.label_values == [0, 1, 2]
    assert report.shapes == [(8, 8, 8)]
    assert "is valid" in report.text()


def test_missing_datalist(tmp_path):
    err = _problems(tmp_path / "nope.json")
    assert "does not exist" in str(err)


def test_invalid_json(folder):
    path = folder / "datalist.json"
    path.write_text("{not json")
    assert "not valid JSON" in str(_problems(path))


def test_missing_file_names_list_key_and_path(folder):
    path = _write(folder, training=[{"image": "img0.nii.gz", "label": "missing.nii.gz"}])
    err = _problems(path)
    assert "training[0] 'label'" in str(err)
    assert "missing.nii.gz" in str(err)
    assert "file not found" in str(err) and "Fix:" in str(err)


def test_unreadable_file(folder):
    (folder / "broken.nii.gz").write_bytes(b"this is not an image")
    path = _write(folder, training=[{"image": "broken.nii.gz", "label": "lab0.nii.gz"}])
    err = _problems(path)
    assert "training[0] 'image'" in str(err) and "unreadable" in str(err)


def test_nan_or_inf(folder):
    arr = np.zeros((8, 8, 8), np.float32)
    arr[0, 0, 0] = np.nan
    arr[1, 0, 0] = np.inf
    _save(folder / "nan.nii.gz", arr)
    err = _problems(_write(folder, training=[{"image": "nan.nii.gz", "label": "lab0.nii.gz"}]))
    assert "2 voxels are NaN or Inf" in str(err)


def test_shape_mismatch(folder):
    _save(folder / "small.nii.gz", np.zeros((8, 8, 6), np.uint8))
    err = _problems(_write(folder, training=[{"image": "img0.nii.gz", "label": "small.nii.gz"}]))
    assert "shape [8, 8, 6] differs from the image's [8, 8, 8]" in str(err)


def test_spacing_mismatch(folder):
    _save(folder / "spaced.nii.gz", np.zeros((8, 8, 8), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))
    err = _problems(_write(folder, training=[{"image": "img0.nii.gz", "label": "spaced.nii.gz"}]))
    assert "spacing [2.0, 2.0, 2.0] mm differs" in str(err)


def test_origin_mismatch(folder):
    affine = np.eye(4)
    affine[:3, 3] = 5.0
    _save(folder / "moved.nii.gz", np.zeros((8, 8, 8), np.uint8), affine)
    err = _problems(_write(folder, training=[{"image": "img0.nii.gz", "label": "moved.nii.gz"}]))
    assert "origin or direction differs" in str(err)


def test_label_values_out_of_range(folder):
    lab = np.zeros((8, 8, 8), np.int16)
    lab[0, 0, 0] = 5
    lab[0, 0, 1] = -1
    _save(folder / "bad.nii.gz", lab)
    err = _problems(_write(folder, training=[{"image": "img0.nii.gz", "label": "bad.nii.gz"}]), num_classes=3)
    assert "label values [-1, 5] are outside [0, 3)" in str(err)


def test_label_values_not_integers(folder):
    _save(folder / "float.nii.gz", np.full((8, 8, 8), 0.5, np.float32))
    err = _problems(_write(folder, training=[{"image": "img0.nii.gz", "label": "float.nii.gz"}]))
    assert "not integers" in str(err)


def test_required_list_missing(folder):
    err = _problems(_write(folder, training=[_entry(0)]), require=("training", "validation"))
    assert "list 'validation': is missing" in str(err)


def test_empty_list(folder):
    err = _problems(_write(folder, training=[]))
    assert "list 'training': is empty" in str(err)


def test_list_is_not_a_list(folder):
    err = _problems(_write(folder, training={"image": "img0.nii.gz"}))
    assert "expected a list of entries, found dict" in str(err)


def test_entry_without_image(folder):
    err = _problems(_write(folder, training=[{"label": "lab0.nii.gz"}]))
    assert "expected an object with an 'image' path" in str(err)


def test_labelled_list_without_label(folder):
    err = _problems(_write(folder, training=[{"image": "img0.nii.gz"}]))
    assert "the 'training' list needs labels, but this entry has none" in str(err)
    assert "move the entry to the 'unlabeled' list" in str(err)


def test_duplicate_entry(folder):
    err = _problems(_write(folder, training=[_entry(0), _entry(0)]))
    assert "training[1] 'image'" in str(err) and "duplicate of training[0]" in str(err)


def test_subject_in_two_lists(folder):
    err = _problems(_write(folder, training=[_entry(0)], test=[_entry(0)]))
    assert "the same subject is also in training[0]" in str(err)


def test_all_problems_in_one_error(folder):
    err = _problems(
        _write(folder, training=[_entry(0), {"image": "img1.nii.gz", "label": "gone.nii.gz"}], validation=[_entry(0)])
    )
    assert len(err.problems) == 2
    assert str(err).startswith(f"Datalist '{folder / 'datalist.json'}' failed verification with 2 problems")


def test_argument_checks(folder):
    path = _write(folder, training=[_entry(0)])
    with pytest.raises(ValueError, match="'num_classes'"):
        verify_datalist(path, num_classes=1)
    with pytest.raises(ValueError, match="unknown list names"):
        verify_datalist(path, lists=["train"])


def test_nrrd_files_are_read(folder):
    rng = np.random.default_rng(1)
    img = sitk.GetImageFromArray(rng.normal(size=(8, 8, 8)).astype(np.float32))
    lab = sitk.GetImageFromArray(rng.integers(0, 2, size=(8, 8, 8)).astype(np.uint8))
    for im in (img, lab):
        im.SetSpacing((1.5, 1.5, 2.0))
    sitk.WriteImage(img, str(folder / "img.nrrd"))
    sitk.WriteImage(lab, str(folder / "lab.nrrd"))
    report = verify_datalist(_write(folder, training=[{"image": "img.nrrd", "label": "lab.nrrd"}]), num_classes=2)
    assert report.spacings == [(1.5, 1.5, 2.0)]


def test_cli_exit_codes(folder, capsys):
    good = _write(folder, training=[_entry(0)])
    assert main(["verify", str(good), "--num-classes", "3"]) == 0
    assert "is valid" in capsys.readouterr().out
    bad = folder / "bad.json"
    bad.write_text(json.dumps({"training": [{"image": "x.nii.gz", "label": "y.nii.gz"}]}))
    assert main(["verify", str(bad)]) == 1
    assert "file not found" in capsys.readouterr().err


def test_cli_phantom_on_the_real_data(tiny_phantom, capsys):
    root, summary = tiny_phantom
    for site in summary["sites"]:
        assert main(["verify", str(root / site["datalist"]), "--num-classes", "4"]) == 0
