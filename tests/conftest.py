"""Shared fixtures: a tiny phantom (a few subjects at 6 mm) made once per test session."""

from __future__ import annotations

import os

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
