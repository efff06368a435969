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
        ("pretrian", [], r"config_stack: 'run' got 'pretrian'\. By 'pretrian', did you mean 'pretrain'\?"),
        ("pretrain", ["synth"], r"config_stack: 'overlays' got 'synth'\. Unsupported option 'synth', Available"),
        ("pretrain", ["3d", "3d"], "names an overlay twice"),
        ("inference", ["3d"], r"\['3d'\] do not apply to 'inference'"),
    ],
)
def test_stack_errors_name_the_argument(run, overlays, message):
    with pytest.raises(ValueError, match=message):
        config_stack(run, overlays)


def test_the_runs_and_overlays_are_the_options_declared_once():
    from monai_hybrid.options import BundleRun, Overlay
    from monai_hybrid.stacks import RUNS

    assert set(RUNS) == set(BundleRun) and list(OVERLAYS) == list(Overlay)


def test_the_configs_command_prints_the_config_file_value():
    out = subprocess.run(
        [sys.executable, "-m", "monai_hybrid.cli", "configs", "finetune", "intensity_augmentation"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == config_file_arg("finetune", ["intensity_augmentation"])
    for run in ("pretrain", "finetune"):
        out = subprocess.run(
            [sys.executable, "-m", "monai_hybrid.cli", "configs", run, "unlabeled", "3d"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert out.endswith("'configs/unlabeled.yaml','configs/3d.yaml']"), out
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


# --- the unlabeled overlay: unlabelled scans for pretraining on the target and semi-supervised fine-tuning -----------


def test_without_the_unlabeled_overlay_no_unlabelled_data_is_declared():
    for run, overlays in (("pretrain", []), ("finetune", []), ("pretrain", ["3d"]), ("finetune", ["3d"])):
        parser = _parser(run, overlays)
        assert "unlabeled" not in parser.get() and "prepared_unlabeled" not in parser.get(), (run, overlays)
        assert parser.get_parsed_content("train#prepare_batch#unlabeled_loader") is None
        assert parser.get_parsed_content("unlabeled_weight") == 0.0
    text = "".join((BUNDLE / "configs" / f).read_text() for f in ("pretrain.yaml", "finetune.yaml", "3d.yaml"))
    assert "unlabeled#" not in text and '_disabled_: "$@unlabeled_weight' not in text


@pytest.mark.parametrize("run", ["pretrain", "finetune"])
@pytest.mark.parametrize("three_d", [False, True])
def test_the_unlabeled_overlay_composes_on_pretraining_and_fine_tuning_in_2d_and_3d(run, three_d):
    parser = _parser(run, ["unlabeled", "3d"] if three_d else ["unlabeled"])
    assert parser["train#prepare_batch#unlabeled_loader"] == "@unlabeled::dataloader"
    assert parser.get_parsed_content("unlabeled_weight") == 0.5
    assert parser.get_parsed_content("unlabeled_datalist") == "datalist.json"  # the run's own datalist by default
    crop = parser.get_parsed_content("unlabeled#crop")
    if three_d:  # patches of the 3D roi, nothing squeezed
        assert _names(crop) == ["RandSpatialCropSamplesd"] and crop[0].cropper.cropper.roi_size == [64, 64, 64]
    else:  # one axial slice per sample
        assert _names(crop) == ["RandSpatialCropSamplesd", "SqueezeDimd"]
        assert crop[0].cropper.cropper.roi_size == [96, 96, 1]
    pipeline = _names(parser.get_parsed_content("unlabeled#preprocessing").transforms)
    assert pipeline[0] == "LoadImaged" and pipeline[-1] == "EnsureTyped"
    assert config_stack(run, ["3d", "unlabeled"])[-2:] == ["unlabeled.yaml", "3d.yaml"]


def test_require_overlay_names_the_key_and_the_stack_that_composes_it():
    from monai_hybrid.bundle import require_overlay

    require_overlay(0.0, "unlabeled_weight", "unlabeled")  # off, no overlay
    require_overlay(0.5, "unlabeled_weight", "unlabeled", composed=True)  # on, with it
    with pytest.raises(ValueError) as info:
        require_overlay(0.5, "unlabeled_weight", "unlabeled")
    message = str(info.value)
    assert "Config key 'unlabeled_weight' is 0.5" in message and "configs/unlabeled.yaml" in message
    assert '"$(monai-hybrid configs pretrain unlabeled)"' in message
    assert '"$(monai-hybrid configs finetune unlabeled)"' in message
    with pytest.raises(ValueError, match="'unlabeled_weight' is 0 with the 'unlabeled' overlay composed"):
        require_overlay(0, "unlabeled_weight", "unlabeled", composed=True)


def _stopped(tmp_path, configs, **overrides) -> str:
    from .conftest import run_config

    with pytest.raises(Exception) as info:  # MONAI wraps it: "Failed to evaluate ConfigExpression"
        run_config("pretrain" if configs[-1] != "finetune.yaml" else "finetune", configs, tmp_path, **overrides)
    assert not (tmp_path / "models").exists()  # stopped before any compute
    error = info.value
    while not isinstance(error, ValueError) and error.__cause__ is not None:
        error = error.__cause__
    return str(error)


@pytest.mark.parametrize("run", ["pretrain", "finetune"])
def test_an_unlabeled_weight_without_the_overlay_stops_the_run_with_the_stack_to_use(tmp_path, run):
    message = _stopped(tmp_path, config_stack(run), unlabeled_weight=0.5)
    assert "Config key 'unlabeled_weight' is 0.5 but the run does not compose the 'unlabeled' overlay" in message
    assert f'"$(monai-hybrid configs {run} unlabeled)"' in message


def test_the_unlabeled_overlay_with_a_zero_weight_stops_the_run(tmp_path):
    message = _stopped(tmp_path, config_stack("pretrain", ["unlabeled"]), unlabeled_weight=0)
    assert "leave the overlay out of --config_file" in message


@pytest.mark.slow
def test_pretraining_with_the_target_sites_unlabelled_scans(bundle_root):
    from .conftest import run_config

    target = bundle_root / "demo_data" / "site_c_flair" / "datalist.json"
    wf = run_config("pretrain", config_stack("pretrain", ["unlabeled"]), bundle_root, unlabeled_datalist=str(target))
    prepare = wf.parser.get_parsed_content("train#prepare_batch")
    assert prepare.unlabeled_loader is not None and prepare.unlabeled_weight == 0.5
    (case,) = prepare.unlabeled_loader.dataset.data  # the target's one unlabelled scan
    assert "site_c_flair" in case["image"]
    assert wf.parser.get_parsed_content("train#trainer").state.iteration == 2


@pytest.mark.parametrize("three_d", [False, True])
def test_class_balanced_sampling_centres_slices_and_patches_on_each_class(three_d):
    overlays = ["3d", "class_balanced"] if three_d else ["class_balanced"]
    parser = _parser("finetune", overlays)
    parser["class_names"] = ["background", "csf", "grey_matter", "white_matter", "lesion"]
    crop = parser.get_parsed_content("train#crop")
    assert _names(crop) == (["RandCropByLabelClassesd"] if three_d else ["RandCropByLabelClassesd", "SqueezeDimd"])
    assert parser.get_parsed_content("class_ratios") == [0.0, 1.0, 1.0, 1.0, 1.0]  # background never, lesion 1/4
    assert crop[0].cropper.spatial_size == ([64, 64, 64] if three_d else [96, 96, 1])
    assert _names(parser.get_parsed_content("train#index_transforms")) == ["ClassesToIndicesd"]
    assert parser.get_parsed_content("tracked_params")["crop"] == "RandCropByLabelClassesd"
    assert _parser("finetune").get_parsed_content("tracked_params")["crop"] == "RandCropByPosNegLabeld"


def test_tracking_records_what_fine_tuning_and_its_overlays_add():
    plain = _parser("finetune").get_parsed_content("tracked_params")
    assert (plain["num_labeled"], plain["label_unit"], plain["unlabeled_weight"]) == (1, "scans", 0.0)
    assert plain["class_weights"] == {} and "stages" not in plain and "pseudo_labels" not in plain
    stack = ["unlabeled", "staged_finetuning", "pseudo_labels"]
    tracked = _parser("finetune", stack).get_parsed_content("tracked_params")
    assert tracked["unlabeled_weight"] == 1.0 and tracked["stages"]["trainable"] == "head"
    assert tracked["pseudo_labels"]["timesteps"] == [0] and tracked["pseudo_labels"]["threshold"] == 0.9
    assert "num_labeled" not in _parser("pretrain").get_parsed_content("tracked_params")
