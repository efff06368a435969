"""White-matter lesions of the phantom (``PhantomConfig(lesions=True)``): target sites only, inside white matter."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from monai_hybrid.data.lesions import (
    LESION_CATEGORIES,
    LESION_MODEL_VERSION,
    LesionCategory,
    lesion_map,
    sample_lesion_model,
)
from monai_hybrid.data.phantom import (
    PhantomConfig,
    generate_phantom,
    render_subject,
    subject_lesions,
    subject_scan,
)
from monai_hybrid.data.sites import DEFAULT_SITES, SOURCE_SITE, ListSizes, site_by_name
from monai_hybrid.data.template import load_template
from tests.conftest import TINY_RESOLUTION

FLAIR = [s.name for s in DEFAULT_SITES].index("site_c_flair")
CATEGORIES = {c.name: c for c in LESION_CATEGORIES}

#: sha256 of image, label and affine bytes of ``render_subject(PhantomConfig(seed=0, resolution=6.0), site, subject)``
#: computed with the code before lesion model 2 (commit a8f8843): a phantom without lesions is unchanged.
PLAIN_SHA256 = {
    (0, 1): "804cf84c0e35654f0f3f2c37fe6b3a51c748e21771d06b7b92d7094ab9094208",
    (3, 1_000_000): "50426bbb6e2902f8d860e6a7356ac8f1f739da4fa4ff3518cc667613c483a1b9",
}


def _config(lesions: bool = True, **kwargs) -> PhantomConfig:
    return PhantomConfig(seed=0, resolution=TINY_RESOLUTION, lesions=lesions, **kwargs)


def _first(config: PhantomConfig, site_index: int, category: str) -> int:
    """The first subject of the site whose lesions are of ``category`` (lesion draws are cheap; no rendering)."""
    for subject in range(100):
        if subject_lesions(config, site_index, subject).category == category:
            return subject
    raise AssertionError(f"no {category} subject among 100")


@pytest.mark.parametrize("site_subject", sorted(PLAIN_SHA256))
def test_phantom_without_lesions_is_unchanged(site_subject):
    image, label, affine = render_subject(_config(lesions=False), *site_subject)
    digest = hashlib.sha256(image.tobytes() + label.tobytes() + affine.tobytes()).hexdigest()
    assert digest == PLAIN_SHA256[site_subject]
    assert "lesion_model" not in _config(lesions=False).to_json()
    assert _config().to_json()["lesion_model"] == LESION_MODEL_VERSION


@pytest.mark.parametrize("category", ["periventricular", "confluent"])
def test_lesions_only_replace_white_matter(category):
    """Lesion fractions come out of the white matter of the same subject; every other class is untouched."""
    subject = _first(_config(), FLAIR, category)
    with_lesions, _ = subject_scan(_config(), FLAIR, subject)
    plain, _ = subject_scan(_config(lesions=False), FLAIR, subject)
    a, b = with_lesions.fractions, plain.fractions
    np.testing.assert_array_equal(a[1:3], b[1:3])  # CSF and grey matter
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)  # background: 1 - the rest, up to rounding
    np.testing.assert_allclose(a[3] + a[4], b[3], atol=1e-6)
    assert a[4].max() > 0.2 and np.all(a[4] <= b[3] + 1e-6)
    lesion_label = np.argmax(a, axis=0) == 4
    assert lesion_label.any()
    assert np.all(np.argmax(b, axis=0)[lesion_label] == 3)  # white matter in the subject without lesions


def test_load_categories_and_shares():
    template = load_template()
    draws = [sample_lesion_model(np.random.default_rng(i), template) for i in range(1000)]
    for name, category in CATEGORIES.items():
        mine = [d for d in draws if d.category == name]
        assert abs(len(mine) / len(draws) - category.share) < 0.05, name
        low, high = category.load_ml
        assert all(low <= d.load_ml <= high for d in mine), name
    loads = np.array([d.load_ml for d in draws if d.load_ml > 0])
    assert 0.5 <= loads.min() < 0.6 and 45.0 < loads.max() <= 50.0
    # log-uniform within a category: half of the confluent loads lie below the geometric mean sqrt(15 * 50)
    confluent = np.array([d.load_ml for d in draws if d.category == "confluent"])
    assert abs(np.mean(confluent < np.sqrt(15.0 * 50.0)) - 0.5) < 0.12


def test_a_handful_of_target_subjects_spans_the_categories():
    config = _config()
    models = [subject_lesions(config, FLAIR, subject) for subject in range(10)]
    assert {m.category for m in models} == set(CATEGORIES)
    assert any(m.load_ml == 0 for m in models)


@pytest.mark.parametrize("category", ["punctate", "confluent"])
def test_lesion_map_holds_the_drawn_load_and_the_scan_shows_it(category):
    config = _config()
    subject = _first(config, FLAIR, category)
    model = subject_lesions(config, FLAIR, subject)
    assert abs(lesion_map(model, load_template()).volume_ml - model.load_ml) <= 0.001  # one 1 mm voxel
    scan, _ = subject_scan(config, FLAIR, subject)
    voxel_ml = abs(np.linalg.det(scan.grid.affine[:3, :3])) / 1000.0
    # partial volume keeps the volume; the subject's affine scales it by at most 1.05^3
    assert 0.8 < scan.fractions[4].sum() * voxel_ml / model.load_ml < 1.2


def test_a_subject_without_lesions_renders_as_without_the_option():
    subject = _first(_config(), FLAIR, "none")
    plain = render_subject(_config(lesions=False), FLAIR, subject)
    for a, b in zip(render_subject(_config(), FLAIR, subject), plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_source_site_has_no_lesion_but_lists_the_class():
    config = _config()
    assert config.sites[0].role == "source" and config.class_names[4] == "lesion"
    for subject in range(3):
        assert subject_lesions(config, 0, subject) is None
        image, label, _ = render_subject(config, 0, subject)
        assert not np.any(label == 4)
        np.testing.assert_array_equal(image, render_subject(_config(lesions=False), 0, subject)[0])


def test_lesions_are_bright_on_flair_and_t2w_and_dark_on_t1w():
    """Scan means over the lesion label against white matter, for a confluent subject at each contrast (a T1w site
    made a target site gets lesions too)."""
    t1w_target = replace(SOURCE_SITE, name="site_t1w_target", role="target")
    config = _config(sites=(SOURCE_SITE, site_by_name("site_b_t2w"), site_by_name("site_c_flair"), t1w_target))
    for index, brighter in ((1, True), (2, True), (3, False)):
        image, label, _ = render_subject(config, index, _first(config, index, "confluent"))
        lesion, white = image[label == 4].mean(), image[label == 3].mean()
        assert (lesion > 1.1 * white) if brighter else (lesion < 0.95 * white), config.sites[index].name


def test_lesions_are_deterministic_per_seed():
    subject = _first(_config(), FLAIR, "periventricular")
    first = render_subject(_config(), FLAIR, subject)
    for a, b in zip(first, render_subject(_config(), FLAIR, subject), strict=True):
        np.testing.assert_array_equal(a, b)
    other = subject_lesions(replace(_config(), seed=1), FLAIR, subject)
    assert other.load_ml != subject_lesions(_config(), FLAIR, subject).load_ml


def test_generated_phantom_has_lesions_at_target_sites_only(tmp_path):
    sizes = ListSizes(training=2, validation=0, test=0)
    config = _config().with_sizes(source=sizes, target=sizes)
    summary = generate_phantom(tmp_path / "p", config, workers=1, progress=False)
    counts = {s["name"]: s["voxel_counts"]["lesion"] for s in summary["sites"]}
    assert counts["site_a_t1w"] == 0 and sum(counts.values()) > 0
    datalist = json.loads((tmp_path / "p" / "site_a_t1w" / "datalist.json").read_text())
    assert datalist["labels"]["4"] == "lesion"


def test_category_and_share_validation_names_the_argument():
    with pytest.raises(ValueError, match="'share'"):
        LesionCategory(name="x", share=1.5, load_ml=(1.0, 2.0))
    with pytest.raises(ValueError, match="'load_ml'"):
        LesionCategory(name="x", share=0.5, load_ml=(2.0, 1.0))
    with pytest.raises(ValueError, match="'load_ml'"):
        LesionCategory(name="x", share=0.5, load_ml=(0.0, 1.0))
    with pytest.raises(ValueError, match="'categories'"):
        sample_lesion_model(np.random.default_rng(0), load_template(), LESION_CATEGORIES[:2])
