"""Overlays instead of switches: each adds its transforms to the training pipeline and says so to tracking; the
config stacks of ``monai-hybrid configs`` compose in a fixed order and refuse what does not apply."""

from __future__ import annotations

import subprocess
import sys

import pytest
from monai.bundle import ConfigParser

from monai_hybrid.stacks import OVERLAYS, config_file_arg, config_stack

from .conftest import BUNDLE


def _parser(run: str, overlays=()) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in config_stack(run, overlays)])
    parser["datalist"] = "datalist.json"  # not read while parsing the transforms
    parser.parse()
    parser.get_parsed_content("imports")
    return parser


def _names(transforms) -> list[str]:
    return [type(t).__name__ for t in transforms]


def test_pretrain_has_no_augmentation_or_synthesis_unless_an_overlay_adds_it():
    parser = _parser("pretrain")
    assert parser.get_parsed_content("train#synthesis") == []
    assert parser.get_parsed_content("train#intensity_augmentation") == []
    text = (BUNDLE / "configs" / "pretrain.yaml").read_text()
    assert "augment_intensity" not in text and "synthesize_images" not in text
    tracked = parser.get_parsed_content("tracked_params")
    assert tracked["synthesis"] is False and tracked["intensity_augmentation"] is False
    assert tracked["mode"] == "hybrid" and tracked["t_max"] == 250  # the method handed whole


@pytest.mark.parametrize(
    "overlay, first, count",
    [("synthesis", "IntensitySubClustersd", 10), ("intensity_augmentation", "RandBiasFieldd", 6)],
)
def test_an_overlay_adds_its_transforms_and_tracking_records_it(overlay, first, count):
    parser = _parser("pretrain", [overlay])
    added = parser.get_parsed_content(f"train#{overlay}")
    assert len(added) == count and _names(added)[0] == first
    pipeline = _names(parser.get_parsed_content("train#preprocessing").transforms)
    assert first in pipeline
    assert parser.get_parsed_content("tracked_params")[overlay] is True


def test_both_overlays_and_3d_compose_on_fine_tuning():
    parser = _parser("finetune", ["3d", "synthesis", "intensity_augmentation"])
    assert parser.get_parsed_content("spatial_dims") == 3
    assert parser["train#affine#rotate_range"] == [0.1, 0.1, 0.1]
    assert parser.get_parsed_content("method#mode") == "supervised"
    assert len(parser.get_parsed_content("train#synthesis")) == 10


def test_stacks_compose_in_the_declared_order_whatever_the_order_given():
    assert config_stack("pretrain", ["3d", "synthesis"]) == [
        "common.yaml",
        "pretrain.yaml",
        "synthesis.yaml",
        "3d.yaml",
    ]
    assert config_file_arg("evaluate") == "['configs/inference.yaml','configs/evaluate.yaml']"
    for name, (file, _runs) in OVERLAYS.items():
        assert (BUNDLE / "configs" / file).is_file(), name


@pytest.mark.parametrize(
    "run, overlays, message",
    [
        ("pretrian", [], "'run' 'pretrian' is not a run"),
        ("pretrain", ["synth"], r"'overlays' \['synth'\] unknown"),
        ("pretrain", ["3d", "3d"], "names an overlay twice"),
        ("inference", ["3d"], r"\['3d'\] do not apply to 'inference'"),
    ],
)
def test_stack_errors_name_the_argument(run, overlays, message):
    with pytest.raises(ValueError, match=message):
        config_stack(run, overlays)


def test_the_configs_command_prints_the_config_file_value():
    out = subprocess.run(
        [sys.executable, "-m", "monai_hybrid.cli", "configs", "finetune", "intensity_augmentation"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == config_file_arg("finetune", ["intensity_augmentation"])
    bad = subprocess.run(
        [sys.executable, "-m", "monai_hybrid.cli", "configs", "inference", "3d"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "do not apply to 'inference'" in bad.stderr


def test_a_key_that_moved_under_method_stops_the_run_with_its_new_name(tmp_path):
    from .conftest import PRETRAIN, run_config

    with pytest.raises(Exception) as info:  # MONAI wraps it: "Failed to evaluate ConfigExpression"
        run_config("pretrain", PRETRAIN, tmp_path, mode="supervised")
    error = info.value
    while not isinstance(error, ValueError) and error.__cause__ is not None:
        error = error.__cause__
    assert "'mode' moved to 'method#mode' in bundle 0.6: use --method#mode supervised" in str(error)
    assert not (tmp_path / "models").exists()  # stopped before any compute
