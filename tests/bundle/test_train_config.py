"""The bundle folder is whole: its configs/train.yaml (the file MONAI Label's train task reads) is committed, and it
is what write_train_config makes of the sources today."""

from __future__ import annotations

import shutil

from monai_hybrid.bundle import default_bundle_dir, write_train_config


def test_the_committed_train_yaml_is_the_one_the_sources_make(tmp_path):
    shipped = default_bundle_dir() / "configs"
    configs = shutil.copytree(shipped, tmp_path / "configs")
    (configs / "train.yaml").unlink()
    write_train_config(configs)
    assert (configs / "train.yaml").read_text() == (shipped / "train.yaml").read_text(), (
        "configs/train.yaml is out of date: write it again with "
        "monai_hybrid.bundle.write_train_config('bundles/hybrid_brain_mri_segmentation/configs')"
    )
