"""Raw-looking target sites of the phantom (``PhantomConfig(raw_sites=True)``): head, air, scanner units."""

from __future__ import annotations

import hashlib
import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from monai_hybrid.cli import main
from monai_hybrid.data.anatomy import Grid
from monai_hybrid.data.head import HEAD_TISSUES, HeadModel
from monai_hybrid.data.mr_physics import TISSUES
from monai_hybrid.data.phantom import (
    SUMMARY_FILE,
    PhantomConfig,
    ensure_phantom,
    generate_phantom,
    render_subject,
    subject_scan,
)
from monai_hybrid.data.render import render_scan
from monai_hybrid.data.sites import DEFAULT_SITES, ListSizes, Site, raw_twin
from tests.conftest import TINY_RESOLUTION

RAW_NAMES = ("site_b_t2w_raw", "site_c_flair_raw", "site_d_pd_raw")

#: sha256 of image, label and affine bytes of ``render_subject(PhantomConfig(seed=0, resolution=6.0), 2, 0)``,
#: computed with the code before raw sites existed (commit 0ff0112).
DEFAULT_FLAIR_SHA256 = "0c7cdca793e88ff3ef77cf5b052eca684ee918bc64d3be8a285df9c188d600fb"


def _raw_config(resolution: float = TINY_RESOLUTION) -> PhantomConfig:
    return PhantomConfig(seed=0, resolution=resolution, raw_sites=True)


def _index(config: PhantomConfig, name: str) -> int:
    return [s.name for s in config.sites].index(name)


def _head_mask(scan) -> np.ndarray:
    """Voxels that are mostly head (brain or extra-cerebral tissue), (X, Y, Z) bool."""
    return (1.0 - scan.fractions[0]) + scan.head.sum(axis=0) > 0.5


def test_raw_sites_are_appended_after_the_default_sites():
    config = _raw_config()
    assert config.sites[: len(DEFAULT_SITES)] == DEFAULT_SITES
    assert tuple(s.name for s in config.sites[len(DEFAULT_SITES) :]) == RAW_NAMES
    for name in RAW_NAMES:
        raw = config.sites[_index(config, name)]
        twin = config.sites[_index(config, name.removesuffix("_raw"))]
        assert raw.raw and not twin.raw
        assert (raw.role, raw.contrast, raw.sequence) == ("target", twin.contrast, twin.sequence)
    # replace() and with_sizes() keep one twin per site
    assert len(config.with_sizes(target=ListSizes(training=1, validation=0, test=0)).sites) == 7


def test_default_sites_are_unchanged_array_for_array():
    image, label, affine = render_subject(PhantomConfig(seed=0, resolution=TINY_RESOLUTION), 2, 0)
    digest = hashlib.sha256(image.tobytes() + label.tobytes() + affine.tobytes()).hexdigest()
    assert digest == DEFAULT_FLAIR_SHA256
    with_raw = render_subject(_raw_config(), 2, 0)
    for a, b in zip((image, label, affine), with_raw, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "raw_sites" not in PhantomConfig().to_json()


def test_raw_background_far_from_the_head_is_rayleigh_noise():
    config = _raw_config()
    index = _index(config, "site_c_flair_raw")
    image, _, _ = render_subject(config, index, 0)
    scan, _ = subject_scan(config, index, 0)
    far = ndimage.distance_transform_edt(~_head_mask(scan), sampling=scan.grid.spacing) > 25.0
    air = image[far].astype(np.float64)
    assert air.size > 1000 and np.mean(air == 0) < 0.02
    # magnitude of complex Gaussian noise: mean / std = sqrt(pi / 2) / sqrt(2 - pi / 2) = 1.913
    assert air.mean() / air.std() == pytest.approx(1.913, abs=0.12)


def test_raw_skull_is_darker_than_fat_and_scalp():
    """Voxels that are mostly cortical bone are darker than fat (FLAIR, PD) and scalp (PD; on FLAIR its short T2
    makes the scalp dark too). At 4 mm the 1 to 3 mm tables share voxels with brain and diploe, hence the margins."""
    config = _raw_config(resolution=4.0)
    for name in ("site_c_flair_raw", "site_d_pd_raw"):
        index = _index(config, name)
        image, _, _ = render_subject(config, index, 0)
        scan, _ = subject_scan(config, index, 0)
        mean = {t: image[scan.head[i] > 0.5].mean() for i, t in enumerate(HEAD_TISSUES)}
        assert mean["cortical_bone"] < 0.65 * mean["fat"], (name, mean)
        if name == "site_d_pd_raw":
            assert mean["cortical_bone"] < 0.85 * mean["scalp"], (name, mean)


def test_raw_labels_are_background_outside_the_brain():
    config = _raw_config()
    index = _index(config, "site_b_t2w_raw")
    _, label, _ = render_subject(config, index, 0)
    scan, _ = subject_scan(config, index, 0)
    outside = scan.fractions[0] > 0.5
    assert np.all(label[outside] == 0)
    assert np.all(label[scan.head.sum(axis=0) > 0.5] == 0)
    assert set(np.unique(label)) == {0, 1, 2, 3}


def test_raw_field_of_view_is_larger_and_the_head_stays_inside():
    config = _raw_config()
    for name in RAW_NAMES:
        raw, twin = _index(config, name), _index(config, name.removesuffix("_raw"))
        raw_image, _, raw_affine = render_subject(config, raw, 0)
        twin_image, _, twin_affine = render_subject(config, twin, 0)
        raw_fov = np.asarray(raw_image.shape) * np.abs(np.diag(raw_affine)[:3])
        twin_fov = np.asarray(twin_image.shape) * np.abs(np.diag(twin_affine)[:3])
        assert np.all(raw_fov > twin_fov + 30.0), (name, raw_fov, twin_fov)
        head = _head_mask(subject_scan(config, raw, 0)[0])
        assert head.sum() > 0.1 * head.size
        for axis in range(3):
            assert not head.take(0, axis=axis).any() and not head.take(-1, axis=axis).any(), (name, axis)


def test_raw_scans_have_different_receiver_gains():
    config = _raw_config()
    index = _index(config, "site_d_pd_raw")
    clean = [render_subject(config, 3, s) for s in range(3)]
    raw = [render_subject(config, index, s) for s in range(3)]
    clean_means = [image[label > 0].mean() for image, label, _ in clean]
    raw_means = [image[label > 0].mean() for image, label, _ in raw]
    assert max(clean_means) / min(clean_means) < 1.15  # normalised to the site's scale
    assert max(raw_means) / min(raw_means) > 1.3, raw_means
    assert all(image.dtype == np.int16 for image, _, _ in raw)


def test_ensure_phantom_regenerates_when_raw_sites_differ(tmp_path, monkeypatch):
    root = tmp_path / "phantom"
    root.mkdir()
    plain = PhantomConfig(seed=0, resolution=TINY_RESOLUTION)
    (root / SUMMARY_FILE).write_text(json.dumps({"config": plain.to_json()}))
    calls = []
    monkeypatch.setattr("monai_hybrid.data.phantom.generate_phantom", lambda *a, **k: calls.append(a[1]))
    ensure_phantom(root, resolution=TINY_RESOLUTION)
    assert calls == []
    ensure_phantom(root, resolution=TINY_RESOLUTION, raw_sites=True)
    assert len(calls) == 1 and calls[0].raw_sites and calls[0].to_json()["raw_sites"] is True


def test_cli_raw_sites_flag(tmp_path, monkeypatch):
    seen = []

    def fake_generate(out, config, **kwargs):
        seen.append(config)
        return {"class_names": list(config.class_names), "sites": []}

    monkeypatch.setattr("monai_hybrid.data.phantom.generate_phantom", fake_generate)
    assert main(["phantom", "--out", str(tmp_path / "p"), "--raw-sites", "--quiet"]) == 0
    assert main(["phantom", "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert [c.raw_sites for c in seen] == [True, False]
    assert seen[0].sites[-1].name == "site_d_pd_raw" and len(seen[1].sites) == len(DEFAULT_SITES)


def test_generate_phantom_with_raw_sites_writes_int16_twins(tmp_path):
    sizes = ListSizes(training=1, validation=0, test=0)
    config = PhantomConfig(seed=0, resolution=TINY_RESOLUTION, raw_sites=True).with_sizes(source=sizes, target=sizes)
    summary = generate_phantom(tmp_path / "p", config, workers=1, progress=False)
    assert [s["name"] for s in summary["sites"]][-3:] == list(RAW_NAMES)
    assert summary["config"]["raw_sites"] is True and "head" in summary["sites"][-1]
    entry = json.loads((tmp_path / "p" / "site_c_flair_raw" / "datalist.json").read_text())["training"][0]
    image = nib.load(str(tmp_path / "p" / "site_c_flair_raw" / entry["image"]))
    assert image.get_data_dtype() == np.int16


def test_raw_argument_validation_names_the_argument():
    with pytest.raises(ValueError, match="'raw_sites'"):
        PhantomConfig(raw_sites="yes")
    with pytest.raises(ValueError, match="'skull_mm'"):
        HeadModel(skull_mm=(8.0, 4.0))
    with pytest.raises(ValueError, match="'gain'"):
        HeadModel(gain=(0.0, 10.0))
    with pytest.raises(ValueError, match="'diploe_fraction'"):
        HeadModel(diploe_fraction=(0.5, 1.2))
    with pytest.raises(ValueError, match="'fov_mm'"):
        HeadModel(fov_mm=(240.0, 0.0, 200.0))
    with pytest.raises(ValueError, match="'head'"):
        Site(**{**DEFAULT_SITES[1].__dict__, "head": "yes"})
    with pytest.raises(ValueError, match="'site'"):
        raw_twin(raw_twin(DEFAULT_SITES[1]))
    fractions = np.zeros((5, 2, 2, 2), dtype=np.float32)
    grid = Grid(shape=(2, 2, 2), affine=np.eye(4))
    with pytest.raises(ValueError, match="'head'"):
        render_scan(fractions, dict(TISSUES), raw_twin(DEFAULT_SITES[1]), grid, 2.0, np.random.default_rng(0))


def test_a_raw_sites_phantom_read_back_is_the_same_config():
    """``ensure_phantom`` reuses a phantom whose summary equals ``to_json()``: the raw sites' head settings must come
    out as JSON types (tuples compared unequal to the lists read back, and the phantom was regenerated each time)."""
    import json

    from monai_hybrid.data.phantom import PhantomConfig

    config = PhantomConfig(seed=0, resolution=6.0, raw_sites=True).to_json()
    assert json.loads(json.dumps(config)) == config


def test_a_bundle_uses_a_phantom_made_with_other_settings_and_never_overwrites_it(tmp_path, monkeypatch, caplog):
    root = tmp_path / "phantom"
    root.mkdir()
    made = PhantomConfig(seed=0, resolution=TINY_RESOLUTION, lesions=True)  # `monai-hybrid phantom --lesions`
    (root / SUMMARY_FILE).write_text(json.dumps({"config": made.to_json()}))
    calls = []
    monkeypatch.setattr("monai_hybrid.data.phantom.generate_phantom", lambda *a, **k: calls.append(a[1]))
    with caplog.at_level("WARNING"):
        assert ensure_phantom(root, resolution=TINY_RESOLUTION, regenerate=False) == root
    assert calls == [] and "'lesions': True" in caplog.text and "delete the folder" in caplog.text
    ensure_phantom(root, resolution=TINY_RESOLUTION)  # the benchmark's call: its own data
    assert len(calls) == 1 and not calls[0].lesions


@pytest.mark.parametrize("older", [{"format_version": 0}, {"lesion_model": 1}])
def test_a_bundle_regenerates_a_phantom_of_older_code_at_the_users_settings(tmp_path, monkeypatch, older):
    """Keeping the user's phantom covers settings they chose (``--lesions``); a phantom written by older code of the
    project, which nobody chose, is remade, but with the user's settings, never the bundle's (the bundle asks for no
    lesions: the user's lesion class must survive)."""
    root = tmp_path / "phantom"
    root.mkdir()
    made = {**PhantomConfig(seed=3, resolution=TINY_RESOLUTION, lesions=True).to_json(), **older}
    (root / SUMMARY_FILE).write_text(json.dumps({"config": made}))
    calls = []
    monkeypatch.setattr("monai_hybrid.data.phantom.generate_phantom", lambda *a, **k: calls.append(a[1]))
    ensure_phantom(root, resolution=TINY_RESOLUTION, regenerate=False)  # the bundle's call
    assert len(calls) == 1 and calls[0].lesions and calls[0].seed == 3


def test_a_bundle_keeps_a_phantom_of_newer_code(tmp_path, monkeypatch):
    root = tmp_path / "phantom"
    root.mkdir()
    made = {**PhantomConfig(seed=0, resolution=TINY_RESOLUTION, lesions=True).to_json(), "format_version": 99}
    (root / SUMMARY_FILE).write_text(json.dumps({"config": made}))
    calls = []
    monkeypatch.setattr("monai_hybrid.data.phantom.generate_phantom", lambda *a, **k: calls.append(a[1]))
    ensure_phantom(root, resolution=TINY_RESOLUTION, regenerate=False)
    assert calls == []
