"""The folder that holds every input: inputs in one folder keep flat output names, scans with one file name in two
folders keep their folders."""

from __future__ import annotations

import json
import os

from monai_hybrid.data import input_images, input_root


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_one_folder_is_the_root(tmp_path):
    _touch(tmp_path / "scans" / "a.nii.gz")
    _touch(tmp_path / "scans" / "b.nii.gz")
    assert input_root(tmp_path / "scans") == str(tmp_path / "scans")
    assert input_root(tmp_path / "scans" / "a.nii.gz") == str(tmp_path / "scans")


def test_studies_with_one_file_name_keep_their_folders(tmp_path):
    one, two = _touch(tmp_path / "pacs" / "study1" / "t1.nii.gz"), _touch(tmp_path / "pacs" / "study2" / "t1.nii.gz")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "d.json").write_text(json.dumps({"test": [{"image": "../pacs/study1/t1.nii.gz"}, {"image": str(two)}]}))
    assert [os.path.normpath(e["image"]) for e in input_images(lists / "d.json")] == [str(one), str(two)]
    assert input_root(lists / "d.json") == str(tmp_path / "pacs")


def test_no_input_gives_no_root(tmp_path):
    # MONAI Label parses inference.yaml without an input: the default path does not exist there
    assert input_root(tmp_path / "nowhere" / "datalist.json") == ""
    (tmp_path / "d.json").write_text(json.dumps({"training": [{"image": "x.nii.gz"}]}))
    assert input_root(tmp_path / "d.json", "test") == ""
