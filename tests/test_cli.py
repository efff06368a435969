from __future__ import annotations

import json

import pytest

from monai_hybrid.cli import main


def test_phantom_command_writes_data_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(
        [
            "phantom",
            "--out",
            str(out),
            "--resolution",
            "6",
            "--source-subjects",
            "2,1,1",
            "--target-subjects",
            "1,1,1,1",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "site_c_flair" in text and "FLAIR" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sites"][0]["subjects"] == {"training": 2, "validation": 1, "test": 1, "unlabeled": 0}
    assert main(["verify", str(out / "site_a_t1w" / "datalist.json"), "--num-classes", "4"]) == 0


def test_phantom_command_rejects_bad_sizes(tmp_path):
    with pytest.raises(SystemExit, match="training,validation,test"):
        main(["phantom", "--out", str(tmp_path / "x"), "--source-subjects", "2,1"])


def test_bundle_and_monailabel_app_commands_write_ready_folders(tmp_path, capsys):
    import py_compile

    assert main(["bundle", str(tmp_path / "b")]) == 0
    configs = tmp_path / "b" / "configs"
    assert {"common.yaml", "pretrain.yaml", "finetune.yaml", "inference.yaml", "train.yaml"} <= {
        p.name for p in configs.iterdir()
    }
    assert main(["bundle", str(tmp_path / "b")]) == 1  # an existing bundle is not overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["monailabel-app", str(tmp_path / "app")]) == 0
    py_compile.compile(str(tmp_path / "app" / "main.py"), doraise=True)
    assert (tmp_path / "app" / "model" / "hybrid_brain_mri_segmentation" / "configs" / "train.yaml").is_file()
    assert main(["monailabel-app", str(tmp_path / "app2"), "--models", str(tmp_path / "nowhere")]) == 1


def test_the_written_train_yaml_is_the_fine_tuning_run_in_one_file(tmp_path):
    from monai.bundle import ConfigParser

    from monai_hybrid.bundle import TRAIN_CONFIGS, write_bundle

    bundle = write_bundle(tmp_path / "b")
    merged, composed = ConfigParser(), ConfigParser()
    merged.read_config(str(bundle / "configs" / "train.yaml"))
    composed.read_config([str(bundle / "configs" / c) for c in TRAIN_CONFIGS])
    for key in ("ckpt_dir", "method", "learning_rate", "network_def", "train#prepare_batch", "run", "validation"):
        assert merged[key] == composed[key], key


def test_an_app_written_from_a_just_pretrained_models_folder_serves_the_pretrained_model(tmp_path, caplog):
    """After the README's main job only models/pretrain/ exists: the app serves the pretrained model until the
    first Train."""
    import json
    import logging

    pretrain = tmp_path / "models" / "pretrain"
    pretrain.mkdir(parents=True)
    (pretrain / "model.pt").write_bytes(b"weights")
    (pretrain / "model_settings.json").write_text(json.dumps({"class_names": ["background", "csf"]}))
    with caplog.at_level(logging.INFO, logger="monai_hybrid.bundle"):
        assert main(["monailabel-app", str(tmp_path / "app"), "--models", str(tmp_path / "models")]) == 0
    models = tmp_path / "app" / "model" / "hybrid_brain_mri_segmentation" / "models"
    assert (models / "model.pt").read_bytes() == b"weights"
    assert json.loads((models / "model_settings.json").read_text())["class_names"] == ["background", "csf"]
    assert "serves the pretrained model" in caplog.text and "until the first Train" in caplog.text


def test_an_app_with_a_class_added_labels_it_everywhere_a_run_reads_classes(tmp_path, capsys):
    import json

    from monai.bundle import ConfigParser

    from monai_hybrid.bundle import default_bundle_dir

    names = ["background", "csf", "grey_matter", "white_matter", "lesion"]
    assert main(["monailabel-app", str(tmp_path / "app"), "--class-names", *names]) == 0
    configs = tmp_path / "app" / "model" / "hybrid_brain_mri_segmentation" / "configs"
    pred = json.loads((configs / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]
    assert pred["channel_def"] == {str(i): n for i, n in enumerate(names)} and pred["num_channels"] == 5
    parser = ConfigParser()
    parser.read_config(str(configs / "train.yaml"))
    assert parser.get_parsed_content("class_names") == names  # set through ConfigParser, not by editing text
    shipped = (default_bundle_dir() / "configs" / "common.yaml").read_text()
    assert (configs / "common.yaml").read_text() == shipped  # the sources are left as they ship
    # refused before anything is written, naming the rule
    for wrong in (["csf", "background"], ["background"], ["background", "csf", "csf"]):
        assert main(["monailabel-app", str(tmp_path / "bad"), "--class-names", *wrong]) == 1
        assert "class_names" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_an_app_for_a_rare_class_weights_it_and_samples_it_in_the_train(tmp_path, capsys):
    """``--class-weights lesion=50 --train-overlays class_balanced``: the Train's train.yaml weights the lesion class
    in Dice-CE and centres its slices class by class; wrong values are refused before anything is written."""
    import torch
    from monai.bundle import ConfigParser

    names = ["background", "csf", "grey_matter", "white_matter", "lesion"]
    app = ["monailabel-app", str(tmp_path / "app"), "--class-names", *names]
    assert main([*app, "--class-weights", "lesion=50", "--train-overlays", "class_balanced"]) == 0
    configs = tmp_path / "app" / "model" / "hybrid_brain_mri_segmentation" / "configs"
    parser = ConfigParser()
    parser.read_config(str(configs / "train.yaml"))
    assert parser.get_parsed_content("class_weights") == {"lesion": 50.0}
    assert parser["train#crop#0#_target_"] == "RandCropByLabelClassesd"
    loss = parser.get_parsed_content("loss")
    assert torch.equal(loss.dice_ce.cross_entropy.weight, torch.tensor([1.0, 1.0, 1.0, 1.0, 50.0]))
    assert "class_balanced.yaml" in (configs / "train.yaml").read_text().splitlines()[0]
    for wrong, message in (
        (["--class-weights", "lesions=50"], "not in 'class_names'"),
        (["--class-weights", "lesion"], "NAME=WEIGHT"),
        (["--class-weights", "lesion=-1"], "positive"),
        (["--train-overlays", "nothing"], "nothing"),
    ):
        assert main(["monailabel-app", str(tmp_path / "bad"), "--class-names", *names, *wrong]) == 1
        assert message in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_an_app_with_a_class_added_grows_the_served_models_head(tmp_path, capsys):
    """The served model labels the tissues; the app adds lesions: model.pt gets a fifth mask channel (zero weights,
    bias below the trained ones), the other weights and the trained channels unchanged, and its settings say so."""
    import json

    import torch

    from monai_hybrid.networks.head_growth import NEW_CLASS_PRIOR
    from tests.bundle.conftest import TINY_SETTINGS as MODEL_SETTINGS

    tissues = ["background", "csf", "grey_matter", "white_matter"]
    models = tmp_path / "models"
    models.mkdir()
    state = {"mask_head.conv.weight": torch.randn(4, 8, 3, 3), "mask_head.conv.bias": torch.randn(4)}
    state["unet.conv_in.conv.weight"] = torch.randn(8, 1, 3, 3)
    torch.save({"model": state, "optimizer": {"state": {}}}, models / "model.pt")
    (models / "model_settings.json").write_text(json.dumps({**MODEL_SETTINGS, "class_names": tissues}))
    app = ["monailabel-app", str(tmp_path / "app"), "--models", str(models)]
    assert main([*app, "--class-names", *tissues, "lesion"]) == 0
    served = tmp_path / "app" / "model" / "hybrid_brain_mri_segmentation" / "models"
    grown = torch.load(served / "model.pt", weights_only=True)["model"]
    assert grown["mask_head.conv.weight"].shape == (5, 8, 3, 3)
    assert torch.equal(grown["mask_head.conv.weight"][:4], state["mask_head.conv.weight"])
    assert not grown["mask_head.conv.weight"][4].any()
    expected = state["mask_head.conv.bias"].min() + torch.log(torch.tensor(NEW_CLASS_PRIOR))
    assert torch.isclose(grown["mask_head.conv.bias"][4], expected)
    assert torch.equal(grown["unet.conv_in.conv.weight"], state["unet.conv_in.conv.weight"])
    assert json.loads((served / "model_settings.json").read_text())["class_names"] == tissues + ["lesion"]
    source = torch.load(models / "model.pt", weights_only=True)["model"]
    assert source["mask_head.conv.bias"].shape == (4,)  # the models folder given is left as it was
    # classes that are not the served model's followed by new ones: refused before anything is written
    bad = ["monailabel-app", str(tmp_path / "bad"), "--models", str(models)]
    assert main([*bad, "--class-names", "background", "lesion"]) == 1
    assert "labels ['background', 'csf'" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_benchmark_names_replicates_that_are_not_pretraining_seeds(tmp_path, capsys):
    code = main(["benchmark", "--preset", "tiny", "--out", str(tmp_path / "b"), "--replicates", "7", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("monai-hybrid benchmark: BenchmarkRunner: 'replicates' must name pretraining seeds")
    assert not (tmp_path / "b").exists()  # refused before anything is written
