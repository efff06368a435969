"""Fine-tune, evaluate and infer end to end on the tiny phantom."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from monai_hybrid.engines import loss_terms
from monai_hybrid.networks import WeightTransferError
from tests.bundle.conftest import EVALUATE, FINETUNE, INFERENCE, PRETRAIN, cause, run_config
from tests.conftest import three_class_datalist

pytestmark = pytest.mark.slow


def test_finetune_from_pretrained_on_one_scan(pretrained):
    run_config("finetune", FINETUNE, pretrained, num_labeled=1)
    models = pretrained / "models"
    assert (models / "model.pt").is_file() and (models / "model_best.pt").is_file()
    cases = json.loads((models / "labelled_cases.json").read_text())
    assert len(cases["cases"]) == 1 and "site_c_flair" in cases["cases"][0]["image"]
    report = json.loads((models / "weight_transfer.json").read_text())
    assert report["loaded"] and report["reinitialised"] == [] and report["source"].endswith("model_final.pt")


def test_finetune_on_slices_with_semi_supervised_denoising(pretrained):
    semi = [*FINETUNE, "unlabeled.yaml"]  # "$(monai-hybrid configs finetune unlabeled)": unlabeled_weight 0.5
    wf = run_config("finetune", semi, pretrained, label_unit="slices", num_labeled=2)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.prepare_batch.unlabeled_loader is not None and trainer.loss_function.image_weight == 0.5
    assert {"loss", "loss_image", "loss_mask"} <= set(loss_terms(trainer.state.output))  # decollated by MONAI
    cases = json.loads((pretrained / "models" / "labelled_cases.json").read_text())["cases"]
    assert all("slice_z_mm" in c for c in cases)


def test_finetune_from_scratch(bundle_root):
    run_config("finetune", FINETUNE, bundle_root, pretrained_checkpoint=None)
    assert (bundle_root / "models" / "model.pt").is_file()
    assert not (bundle_root / "models" / "weight_transfer.json").exists()


def test_finetune_with_another_class_count_reinitialises_the_mask_head(pretrained):
    # not the pretrained classes followed by new ones (those grow the head: test_finetune_add_class.py)
    run_config(
        "finetune", FINETUNE, pretrained, class_names=["background", "lesion", "csf", "grey_matter", "white_matter"]
    )
    report = json.loads((pretrained / "models" / "weight_transfer.json").read_text())
    assert sorted(report["reinitialised"]) == ["mask_head.conv.bias", "mask_head.conv.weight"]
    assert report["mask_head"]["action"] == "reinitialised" and report["grown"] == []


def test_finetune_refuses_another_architecture(pretrained):
    with pytest.raises(Exception) as info:
        run_config("finetune", FINETUNE, pretrained, **{"network_args#channels": [16, 16]})
    assert "does not fit the network" in str(cause(info.value, WeightTransferError))


@pytest.fixture(scope="module")
def finetuned(pretrained_root, tmp_path_factory):
    """A fine-tuned model, made once for the tests that read it (each writes its outputs to its own folder)."""
    root = tmp_path_factory.mktemp("finetuned") / "run"
    shutil.copytree(pretrained_root, root)
    run_config("finetune", FINETUNE, root)
    return root


def _dice(pred, label, k):
    p, g = pred == k, label == k
    return 2 * np.logical_and(p, g).sum() / (p.sum() + g.sum())


def test_evaluate_matches_dice_computed_by_hand(finetuned):
    run_config("run", EVALUATE, finetuned, generate_demo_data=False)
    out = finetuned / "eval" / "evaluate"
    report = json.loads((out / "metrics.json").read_text())
    datalist = json.loads((finetuned / "demo_data" / "site_c_flair" / "datalist.json").read_text())
    assert len(report["cases"]) == len(datalist["test"])
    assert (out / "metrics.csv").read_text().startswith("case,dice_csf,dice_grey_matter,dice_white_matter")
    for case, entry in zip(report["cases"], datalist["test"], strict=False):
        label_img = nib.load(str(finetuned / "demo_data" / "site_c_flair" / entry["label"]))
        pred_img = nib.load(str(out / f"{case['case']}_seg.nii.gz"))
        np.testing.assert_allclose(pred_img.affine, label_img.affine, atol=1e-4)
        pred, label = np.asarray(pred_img.dataobj), np.asarray(label_img.dataobj)
        assert pred.shape == label.shape
        for k, name in enumerate(["csf", "grey_matter", "white_matter"], start=1):
            assert case[f"dice_{name}"] == pytest.approx(_dice(pred, label, k), abs=1e-5)
        assert case["mean_fg_dice"] == pytest.approx(np.mean([_dice(pred, label, k) for k in (1, 2, 3)]), abs=1e-5)
        assert "hd95_csf" in case and case["n_missed"] == sum(
            case[f"missed_{n}"] for n in ("csf", "grey_matter", "white_matter")
        )
    assert report["summary"]["mean_fg_dice"]["n"] == len(datalist["test"])


@pytest.mark.parametrize("site", ["site_c_flair", "site_d_pd"])
def test_inference_keeps_the_input_affine(finetuned, site):
    out = finetuned / "eval" / site
    run_config("run", INFERENCE, finetuned, target_site=site, output_dir=str(out))
    datalist = json.loads((finetuned / "demo_data" / site / "datalist.json").read_text())
    for entry in datalist["test"]:
        image = nib.load(str(finetuned / "demo_data" / site / entry["image"]))
        name = entry["image"].split("/")[-1].replace(".nii.gz", "")
        seg = nib.load(str(out / f"{name}_seg.nii.gz"))
        assert seg.shape == image.shape
        np.testing.assert_allclose(seg.affine, image.affine, atol=1e-4)
        assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 3}


def test_inference_reads_nrrd_and_dicom_free_folders(finetuned, tmp_path):
    datalist = json.loads((finetuned / "demo_data" / "site_c_flair" / "datalist.json").read_text())
    src = finetuned / "demo_data" / "site_c_flair" / datalist["test"][0]["image"]
    folder = tmp_path / "incoming"
    folder.mkdir()
    sitk.WriteImage(sitk.ReadImage(str(src)), str(folder / "scan.nrrd"))
    out = tmp_path / "out"
    run_config("run", INFERENCE, finetuned, input=str(folder), output_dir=str(out))
    seg = sitk.ReadImage(str(out / "scan_seg.nii.gz"))
    ref = sitk.ReadImage(str(src))
    assert seg.GetSize() == ref.GetSize()
    np.testing.assert_allclose(seg.GetOrigin(), ref.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(seg.GetSpacing(), ref.GetSpacing(), atol=1e-4)


def test_inference_without_a_model_says_so(bundle_root):
    with pytest.raises(Exception) as info:
        run_config("run", INFERENCE, bundle_root)
    assert "model.pt' does not exist" in str(cause(info.value, FileNotFoundError))


def test_3d_three_class_model_is_evaluated_and_served_without_overrides(bundle_root, tmp_path):
    classes = ["background", "csf", "tissue"]
    source = three_class_datalist(bundle_root / "demo_data", "site_a_t1w", tmp_path / "source")
    target = three_class_datalist(bundle_root / "demo_data", "site_c_flair", tmp_path / "target")
    run_config(
        "pretrain",
        [*PRETRAIN, "3d.yaml"],
        bundle_root,
        datalist=source,
        class_names=classes,
        roi_size=[32, 32, 32],
        samples_per_volume=1,
    )
    model = bundle_root / "models" / "pretrain" / "model.pt"
    # no model-defining override below: 3D, the window and the 3 classes come from model_settings.json
    wf = run_config("run", EVALUATE, bundle_root, input=target, model_path=str(model))
    network = wf.parser.get_parsed_content("network_def")
    assert network.spatial_dims == 3 and network.num_classes == 3
    report = json.loads((bundle_root / "eval" / "evaluate" / "metrics.json").read_text())
    assert {"dice_csf", "dice_tissue"} <= set(report["cases"][0]) and "dice_grey_matter" not in report["cases"][0]
    out = tmp_path / "segmented"
    run_config("run", INFERENCE, bundle_root, input=target, model_path=str(model), output_dir=str(out))
    segs = sorted(out.glob("*_seg.nii.gz"))
    assert segs and all(set(np.unique(np.asarray(nib.load(str(p)).dataobj))) <= {0, 1, 2} for p in segs)


def test_evaluate_with_the_hybrid_ensemble_from_the_command_line_keys(finetuned):
    """The ensemble is an inference setting: evaluate (an overlay on inference.yaml) takes it like MONAI Label's
    inference would, and its model settings carry the noise schedule it noises with."""
    out = finetuned / "eval" / "ensemble"
    run_config("run", EVALUATE, finetuned, output_dir=str(out), ensemble_timesteps=[0, 5, 10], ensemble_draws=2)
    report = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= report["summary"]["mean_fg_dice"]["mean"] <= 1.0
    settings = json.loads((finetuned / "models" / "model_settings.json").read_text())
    assert settings["noise_schedule"] == {"num_train_timesteps": 20, "schedule": "linear_beta"}
