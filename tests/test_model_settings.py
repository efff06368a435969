"""Model settings recorded beside the weights: validation, round trip, and the bundle defaults as the fallback."""

from __future__ import annotations

import json

import pytest

from monai_hybrid.bundle import default_bundle_dir
from monai_hybrid.model_settings import SETTINGS_FILE, check_model_settings, read_model_settings, save_model_settings
from monai_hybrid.networks import hybrid_unet_from_settings
from tests.bundle.conftest import TINY_SETTINGS


def test_saved_settings_are_read_back_from_the_model_folder(tmp_path):
    save_model_settings(TINY_SETTINGS, tmp_path)
    (tmp_path / "model.pt").write_bytes(b"")
    # a model trained before bundle 0.5 has no noise schedule recorded: it gets the one it was trained with
    assert read_model_settings(tmp_path / "model.pt") == {
        **TINY_SETTINGS,
        "noise_schedule": {"num_train_timesteps": 1000, "schedule": "linear_beta"},
        "denoised_timesteps": None,  # nor which noise levels it learned to denoise (recorded since bundle 0.8)
    }
    net = hybrid_unet_from_settings(TINY_SETTINGS, output_mode="mask")
    assert net.num_classes == 4 and net.spatial_dims == 2 and net.output_mode == "mask"


def test_without_recorded_settings_the_bundle_defaults_are_used(tmp_path, caplog):
    settings = read_model_settings(tmp_path / "model.pt", default_bundle_dir())
    assert settings["class_names"] == ["background", "csf", "grey_matter", "white_matter"]
    assert settings["spatial_dims"] == 2 and settings["roi_size"] == [96, 96] and settings["pixdim"] == [2.0] * 3
    assert "using the bundle defaults" in caplog.text


def test_no_model_and_no_bundle_says_the_model_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.pt' does not exist; train one first"):
        read_model_settings(tmp_path / "model.pt", tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"roi_size": [32, 32, 32]}, "'roi_size' must hold 2 sizes.*configs/3d.yaml"),
        ({"class_names": ["background"]}, "'class_names' must list at least 2"),
        ({"spatial_dims": 4}, "'spatial_dims' must be 2 or 3"),
        ({"intensity": {"lower": 0.5}}, "'intensity' must hold exactly"),
        ({"denoised_timesteps": -1}, "'denoised_timesteps' must be null or a non-negative integer"),
        ({"denoised_timesteps": 2.5}, "'denoised_timesteps' must be null or a non-negative integer"),
    ],
)
def test_each_bad_setting_is_named(change, message):
    with pytest.raises(ValueError, match=message):
        check_model_settings({**TINY_SETTINGS, **change}, "settings.json")


def test_a_missing_setting_and_bad_json_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"settings.json: model settings lack \['network_args'\]"):
        check_model_settings({k: v for k, v in TINY_SETTINGS.items() if k != "network_args"}, "settings.json")
    (tmp_path / SETTINGS_FILE).write_text("{")
    with pytest.raises(ValueError, match="model_settings.json' is not valid JSON"):
        read_model_settings(tmp_path / "model.pt")


def test_common_yaml_declares_the_settings_that_a_training_run_records(tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(default_bundle_dir() / "configs" / "common.yaml"))
    recorded = save_model_settings(parser.get_parsed_content("model_settings"), tmp_path)
    assert json.loads(recorded.read_text())["network_args"]["channels"] == [16, 32, 64, 64]
