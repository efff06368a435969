"""The benchmark's ``bundle`` preset runs what the shipped bundle trains: its settings are read from the configs, so
changing a config changes the preset, and every setting the benchmark passes to a run equals the bundle's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_hybrid.benchmark import PRESETS, RunContext, bundle_preset
from monai_hybrid.bundle import default_bundle_dir
from monai_hybrid.stacks import config_stack


def _parsed(run: str, bundle: Path = None) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str((bundle or default_bundle_dir()) / "configs" / f) for f in config_stack(run)])
    return parser


def test_bundle_preset_passes_the_bundles_own_values():
    """What the benchmark overrides in a bundle-preset run is what the bundle would use anyway (a no-op)."""
    preset = PRESETS["bundle"]
    pretrain, finetune = _parsed("pretrain"), _parsed("finetune")
    ctx = RunContext(Path("unused"), preset, default_bundle_dir(), "s.json", {"site": "t.json"}, ("background", "a"))
    model = ctx.training_overrides(config_stack("pretrain"))
    for key in (
        "pixdim",
        "roi_size",
        "network_args#channels",
        "network_args#attention_levels",
        "network_args#num_head_channels",
        "network_args#norm_num_groups",
        "batch_volumes",
        "samples_per_volume",
        "amp",
    ):
        assert model[key] == pretrain.get_parsed_content(key), key
    assert preset.learning_rate == pretrain.get_parsed_content("learning_rate")
    assert preset.pretrain_epochs == pretrain.get_parsed_content("epochs")
    assert preset.pretrain_iterations_per_epoch == pretrain.get_parsed_content("iterations_per_epoch")
    assert preset.pretrain_val_interval == pretrain.get_parsed_content("val_interval")
    assert preset.checkpoint_every == pretrain.get_parsed_content("checkpoint_every")
    assert preset.finetune_learning_rate == finetune.get_parsed_content("learning_rate")
    assert preset.finetune_steps == finetune.get_parsed_content("epochs") * finetune.get_parsed_content(
        "iterations_per_epoch"
    )
    assert preset.finetune_samples_per_volume == finetune.get_parsed_content("samples_per_volume")
    # the model the README ships, not a benchmark's variant of it
    assert (preset.resolution, preset.roi, preset.pretrain_steps, preset.finetune_steps) == (2.0, (96, 96), 1000, 300)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_bundle_preset_follows_the_configs(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_dir() / "configs", bundle / "configs")
    _edit(bundle / "configs" / "common.yaml", "channels: [16, 32, 64, 64]", "channels: [8, 16, 32, 32]")
    _edit(bundle / "configs" / "pretrain.yaml", "learning_rate: 0.0005", "learning_rate: 0.003")
    _edit(bundle / "configs" / "finetune.yaml", "iterations_per_epoch: 25", "iterations_per_epoch: 10")
    preset = bundle_preset(bundle)
    assert preset.channels == (8, 16, 32, 32)
    assert preset.learning_rate == 0.003
    assert preset.finetune_steps == 120
    assert preset.finetune_learning_rate == PRESETS["bundle"].finetune_learning_rate  # finetune.yaml's own


@pytest.mark.parametrize(
    ("config", "old", "new", "message"),
    [
        ("pretrain.yaml", "learning_rate: 0.0005", "learning_rate: '$0.002 / 2'", "'learning_rate' of the bundle's "
         "pretrain configs .* is the expression"),
        ("common.yaml", "pixdim: [2.0, 2.0, 2.0]", "pixdim: [1.0, 1.0, 3.0]", "pixdim .* is not isotropic"),
    ],
)  # fmt: skip
def test_bundle_preset_refuses_what_it_cannot_run(tmp_path, config, old, new, message):
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_dir() / "configs", bundle / "configs")
    _edit(bundle / "configs" / config, old, new)
    with pytest.raises(ValueError, match=message):
        bundle_preset(bundle)
