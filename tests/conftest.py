"""Shared fixtures: a tiny phantom (a few subjects at 6 mm) made once per test session."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from monai_hybrid.data.phantom import PhantomConfig, generate_phantom  # noqa: E402
from monai_hybrid.data.sites import ListSizes  # noqa: E402

TINY_RESOLUTION = 6.0


def tiny_config(seed: int = 0, lesions: bool = False) -> PhantomConfig:
    return PhantomConfig(seed=seed, resolution=TINY_RESOLUTION, lesions=lesions).with_sizes(
        source=ListSizes(training=3, validation=2, test=1, unlabeled=0),
        target=ListSizes(training=2, validation=1, test=1, unlabeled=1),
    )


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory):
    """Path of a tiny phantom (all four sites, 6 mm voxels) and its summary."""
    out = tmp_path_factory.mktemp("phantom") / "tiny"
    summary = generate_phantom(out, tiny_config(), workers=1, progress=False)
    return out, summary


def three_class_datalist(phantom, site: str, out) -> str:
    """The phantom site's datalist with grey and white matter merged into one class: background, CSF, tissue."""
    src = phantom / site
    datalist = json.loads((src / "datalist.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for name in ("training", "validation", "test"):
        for entry in datalist[name]:
            label = nib.load(str(src / entry["label"]))
            merged = np.minimum(np.asarray(label.dataobj), 2).astype(np.uint8)
            path = out / entry["label"].replace("/", "_")
            nib.save(nib.Nifti1Image(merged, label.affine), str(path))
            entry["image"], entry["label"] = str(src / entry["image"]), str(path)
    datalist.pop("unlabeled", None)
    datalist["labels"] = {"0": "background", "1": "csf", "2": "tissue"}
    (out / "datalist.json").write_text(json.dumps(datalist))
    return str(out / "datalist.json")
