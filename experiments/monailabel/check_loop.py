"""The hospital's loop in a real MONAI Label 0.8.5 server on 127.0.0.1: annotate, fine-tune from the server, serve
the new model, ask for the next scan.

1. pretrains a small hybrid model on the source site of a 3 mm phantom (the site's bundle: 3 mm, 64 x 64 windows,
   set in its configs/common.yaml, configs/train.yaml written again from it);
2. writes the project's MONAI Label app (``monai-hybrid monailabel-app``) with that model, and 6 FLAIR scans of the
   target site as the studies;
3. starts the server, and scores ``/infer/`` on a held-out study (Dice against its ground truth); through MONAI
   Label's own client (``monailabel.client.MONAILabelClient``), ``/infer/`` of an unknown image id must answer 404
   naming the id;
4. saves the labels of two studies through the datastore API (``PUT /datastore/label``, tag final), and, through
   MONAI Label's client, a label whose shape differs from its image for a third one;
5. trains (``POST /train/<model>``, synchronous): the bundle's fine-tuning run from the pretrained model on the two
   good labels; the server's log must name the mismatched label as left out; checks that ``models/model.pt`` was
   replaced;
6. scores ``/infer/`` on the held-out study again: it must reach at least the pretrained model's Dice;
7. waits for the ``hybrid_disagreement`` scoring that MONAI Label runs in the background after the Train: every
   unlabelled study gets a score of the new model in its image info; prints the scoring's seconds per study;
8. asks ``POST /activelearning/hybrid_disagreement`` for the next study: the unlabelled one with the highest stored
   score, answered in under 2 s (printed); and ``random``: an unlabelled one;
9. stops the server by its process id.

With ``--lesions`` the target scans carry white-matter lesions (the phantom's lesion model) and the app labels a
class the source never labelled (``monai-hybrid monailabel-app --class-names ... lesion``, which grows the served
model's mask head; ``--class-weights lesion=50 --train-overlays class_balanced``, as the lesion benchmark trains):
the studies are the six FLAIR scans with the largest lesion load, the Train grows the mask head
of the pretrained model (``weight_transfer.json`` must list ``lesion`` as added), and ``/infer/`` on the held-out
study must return class 4.
``--pretrained`` serves a pretraining already made (a ``models/pretrain`` folder; its voxel size, window and network
are written into the app's ``configs/common.yaml``) instead of pretraining one.

    bash experiments/monailabel/setup_env.sh                       # once: .monailabel-venv
    python experiments/monailabel/check_loop.py --monailabel-python .monailabel-venv/bin/python
    python experiments/monailabel/check_loop.py --lesions --pretrained BENCH/pretrain/hybrid_seed0/models/pretrain

Run from this project's own environment (it pretrains with it). Exit code 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import MODEL, dice, free_port, logger, monailabel_python, request, run_check, start_server, wait_ready  # noqa: E402

from monai_hybrid.checkpoint_io import model_stamp  # noqa: E402

_log = logger("check_loop")


SITE_SETTINGS = {"pixdim": [3.0, 3.0, 3.0], "roi_size": [64, 64]}
TISSUES = ["background", "csf", "grey_matter", "white_matter"]
LESION = 4


def pretrain(work: Path, steps: int, data: Path) -> Path:
    """A pretrained hybrid model (3 mm, 64 x 64) on the phantom's source site; returns its models dir."""
    from monai_hybrid.bundle import run_bundle

    run_bundle(
        "pretrain",
        ["common.yaml", "pretrain.yaml"],
        work / "pretrain",
        epochs=1,
        iterations_per_epoch=steps,
        val_interval=1,
        generate_demo_data=False,
        dataset_dir=str(data),
        progress_bar=False,
        **SITE_SETTINGS,
    )
    return work / "pretrain" / "models" / "pretrain"


def site_settings(pretrained: Path | None) -> dict:
    """The app bundle's site settings: the 3 mm defaults of this check, or those of a given pretraining."""
    if pretrained is None:
        return dict(SITE_SETTINGS)
    recorded = json.loads((pretrained / "model_settings.json").read_text())
    return {key: recorded[key] for key in ("pixdim", "roi_size", "network_args")}


def write_app(work: Path, pretrained: Path, settings: dict, class_names: list[str] | None, lesions: bool) -> Path:
    """The MONAI Label app with the site's bundle: pretrained weights in models/pretrain, served as models/model.pt
    until the first training; ``class_names`` (the app's labels) when a class is added; with ``lesions`` the Train
    weights and samples the lesion class as the lesion benchmark does (``--class-weights``, ``--train-overlays``)."""
    import yaml

    from monai_hybrid.benchmark.plan import LESION_OVERLAYS, LESION_OVERRIDES
    from monai_hybrid.bundle import configure_app_training, grow_served_model, write_monailabel_app

    weights = LESION_OVERRIDES["class_weights"] if lesions else None
    overlays = LESION_OVERLAYS if lesions else ()
    app = write_monailabel_app(work / "app", class_names=class_names, class_weights=weights, train_overlays=overlays)
    bundle = app / "model" / MODEL
    shutil.copytree(pretrained, bundle / "models" / "pretrain")
    shutil.copy(pretrained / "model_final.pt", bundle / "models" / "model.pt")
    shutil.copy(pretrained / "model_settings.json", bundle / "models" / "model_settings.json")
    if class_names is not None:  # what monailabel-app --models --class-names does to the served model
        grow_served_model(bundle / "models", class_names)
    common = yaml.safe_load((bundle / "configs" / "common.yaml").read_text())
    common.update(settings)  # the site's settings, as a user edits them
    (bundle / "configs" / "common.yaml").write_text(yaml.safe_dump(common, sort_keys=False))
    configure_app_training(bundle, class_names, weights, overlays)  # train.yaml again, from the edited common.yaml
    return app


def save_label(url: str, image_id: str, label: Path) -> None:
    """``PUT /datastore/label?image=<id>&tag=final`` with the label file (multipart)."""
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="label"; filename="{label.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + label.read_bytes()
    body += (
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n{{}}\r\n--{boundary}--\r\n'.encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request(f"{url}/datastore/label?image={image_id}&tag=final", "PUT", body, headers)


CLIENT_SNIPPET = """
import json, sys
from monailabel.client import MONAILabelClient
from monailabel.client.client import MONAILabelClientException
url, action, image_id = sys.argv[1:4]
client = MONAILabelClient(url)
try:
    if action == "infer":
        client.infer(sys.argv[4], image_id, {})
    else:
        client.save_label(image_id, sys.argv[4], tag="final")
    print(json.dumps({"ok": True}))
except MONAILabelClientException as e:
    print(json.dumps({"ok": False, "msg": e.msg}))
"""


def with_client(python: str, url: str, action: str, image_id: str, arg: str) -> dict:
    """``infer`` (arg: the model) or ``save_label`` (arg: the label file) through MONAI Label's own client, in
    MONAI Label's environment; returns ``{"ok": True}`` or ``{"ok": False, "msg": the client's error}``."""
    out = subprocess.check_output([python, "-c", CLIENT_SNIPPET, url, action, image_id, arg], text=True)
    return json.loads(out.strip().splitlines()[-1])


def wait_for_scores(url: str, image_ids: list[str], stamp: str, timeout: float = 1800) -> dict[str, dict]:
    """The stored ``hybrid_disagreement`` entries of ``image_ids`` once all were scored with the model ``stamp``."""
    start = time.time()
    while time.time() - start < timeout:
        objects = json.loads(request(f"{url}/datastore/?output=all", "GET"))["objects"]
        entries = {i: objects[i]["image"]["info"].get("hybrid_disagreement") or {} for i in image_ids}
        if all(e.get("model") == stamp for e in entries.values()):
            return entries
        time.sleep(5)
    raise TimeoutError(f"the background scoring did not score {image_ids} with the new model in {timeout} s")


def mismatched_label(reference: Path, out: Path) -> Path:
    """A label one voxel short along the first axis: the shape no longer matches its image."""
    label = nib.load(str(reference))
    data = np.asarray(label.dataobj)[:-1]
    nib.save(nib.Nifti1Image(data, label.affine), str(out))
    return out


def infer(url: str, image_id: str, reference: Path, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """``/infer/`` of ``image_id`` (the label map) and the reference label map."""
    out.write_bytes(request(f"{url}/infer/{MODEL}?image={image_id}&output=image"))
    pred = np.asarray(nib.load(str(out)).dataobj).astype(np.int64)
    gt = np.asarray(nib.load(str(reference)).dataobj)
    assert pred.shape == gt.shape, f"shape {pred.shape} != {gt.shape}"
    return pred, gt


def infer_dice(url: str, image_id: str, reference: Path, out: Path) -> float:
    """The mean Dice of the tissue classes of ``/infer/`` on ``image_id``."""
    pred, gt = infer(url, image_id, reference, out)
    return float(np.mean([dice(pred, gt, k) for k in (1, 2, 3)]))


def by_lesion_load(site: Path, entries: list[dict]) -> list[dict]:
    """``entries`` with the largest lesion volume first."""
    voxels = {e["image"]: int((np.asarray(nib.load(str(site / e["label"])).dataobj) == LESION).sum()) for e in entries}
    return sorted(entries, key=lambda e: -voxels[e["image"]])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--monailabel-python", default=".monailabel-venv/bin/python")
    p.add_argument("--steps", type=int, default=150, help="pretraining steps of the served model")
    p.add_argument("--max-epochs", type=int, default=4, help="epochs (of 25 steps) of the server's fine-tuning")
    p.add_argument("--phantom-dir", default=None, help="3 mm phantom to use or create (default: in the work folder)")
    p.add_argument("--lesions", action="store_true", help="target scans with lesions; the app adds the lesion class")
    p.add_argument("--pretrained", default=None, help="a models/pretrain folder to serve instead of pretraining")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args(argv)
    python = monailabel_python(args.monailabel_python, _log)
    if python is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="monailabel-loop-"))

    def check(state: dict) -> None:
        from monai_hybrid.data import ensure_phantom

        phantom = Path(args.phantom_dir) if args.phantom_dir else work / "phantom"
        data = ensure_phantom(phantom, resolution=3.0, lesions=args.lesions, progress=False)
        t0 = time.time()
        if args.pretrained:
            pretrained = Path(args.pretrained)
            _log(f"serving the pretraining in {pretrained}")
        else:
            pretrained = pretrain(work, args.steps, data)
            _log(f"pretrained the hybrid model in {time.time() - t0:.0f} s")
        settings = site_settings(pretrained if args.pretrained else None)
        app = write_app(work, pretrained, settings, TISSUES + ["lesion"] if args.lesions else None, args.lesions)
        site = data / "site_c_flair"
        entries = json.loads((site / "datalist.json").read_text())["training"]
        entries = (by_lesion_load(site, entries) if args.lesions else entries)[:6]
        (work / "studies").mkdir()
        ids = [f"flair_{i}" for i in range(len(entries))]
        for image_id, entry in zip(ids, entries, strict=True):
            shutil.copy(site / entry["image"], work / "studies" / f"{image_id}.nii.gz")
        labelled, held_out = ids[:2], ids[2]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = state["server"] = start_server(python, work, app, port)
        info = wait_ready(url, server)
        _log(
            f"server {server.pid} ready; trainers {list(info.get('trainers', {}))}, strategies "
            f"{list(info.get('strategies', {}))}"
        )
        reference = site / entries[2]["label"]
        before = infer_dice(url, held_out, reference, work / "before.nii.gz")
        _log(f"/infer/ on {held_out} with the pretrained model: mean foreground Dice {before:.3f}")
        unknown = with_client(python, url, "infer", "no_such_study", MODEL)
        assert not unknown["ok"] and "Status: 404" in unknown["msg"] and "no_such_study" in unknown["msg"], unknown
        _log(f"/infer/ of an unknown id through MONAI Label's client: {unknown['msg'][:120]}")
        for image_id, entry in zip(labelled, entries[:2], strict=True):
            save_label(url, image_id, site / entry["label"])
        _log(f"saved final labels of {labelled} through PUT /datastore/label")
        bad_id = ids[3]
        saved = with_client(
            python, url, "save_label", bad_id, str(mismatched_label(site / entries[3]["label"], work / "bad.nii.gz"))
        )
        assert saved["ok"], saved
        _log(f"saved a label of {bad_id} one voxel short through MONAI Label's client: accepted")
        served = app / "model" / MODEL / "models" / "model.pt"
        stamp = os.stat(served).st_mtime_ns
        t1 = time.time()
        params = {"max_epochs": args.max_epochs, "val_split": 0.0, "device": "cpu"}
        request(
            f"{url}/train/{MODEL}?run_sync=true",
            body=json.dumps(params).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert os.stat(served).st_mtime_ns > stamp, "training did not replace models/model.pt"
        report = json.loads((app / "model" / MODEL / "models" / "weight_transfer.json").read_text())
        _log(
            f"POST /train/{MODEL}: fine-tuned in {time.time() - t1:.0f} s from {Path(report['source']).name} "
            f"({len(report['loaded'])} keys loaded); models/model.pt replaced"
        )
        left_out = [line for line in (work / "server.log").read_text().splitlines() if "left out, label shape" in line]
        assert left_out and f"{bad_id}.nii.gz" in left_out[-1], "the mismatched label was not named in the log"
        _log(f"the train task named the mismatched label: {left_out[-1].split('its image: ')[-1]}")
        pred, gt = infer(url, held_out, reference, work / "after.nii.gz")
        after = float(np.mean([dice(pred, gt, k) for k in (1, 2, 3)]))
        _log(f"/infer/ on {held_out} with the fine-tuned model: tissue Dice {after:.3f} (before {before:.3f})")
        assert after >= before, f"the fine-tuned model scores {after:.3f} < {before:.3f}"
        if args.lesions:
            grown = report["mask_head"]
            assert "lesion" in json.dumps(grown), f"weight_transfer.json does not list the lesion channel: {grown}"
            _log(f"weight_transfer.json, mask head: {json.dumps(grown)}")
            found = int((pred == LESION).sum())
            assert found > 0, f"/infer/ on {held_out} returned no voxel of class {LESION}"
            _log(
                f"/infer/ on {held_out} returns class {LESION} (lesion): {found} voxels predicted, "
                f"{int((gt == LESION).sum())} in the reference, lesion Dice {dice(pred, gt, LESION):.3f}"
            )
        unlabelled = [i for i in ids if i not in (*labelled, bad_id)]
        t2 = time.time()
        scores = wait_for_scores(url, unlabelled, model_stamp(served))
        per_study = [e["seconds"] for e in scores.values()]
        _log(
            f"background scoring after the Train: {len(scores)} unlabelled studies scored with the new model "
            f"(waited {time.time() - t2:.0f} s after /infer/); {np.mean(per_study):.1f} s per study "
            f"(min {min(per_study):.1f}, max {max(per_study):.1f})"
        )
        best = max(scores, key=lambda i: scores[i]["score"])
        for strategy in ("hybrid_disagreement", "random"):
            t3 = time.time()
            choice = json.loads(
                request(f"{url}/activelearning/{strategy}", body=b"{}", headers={"Content-Type": "application/json"})
            )
            seconds = time.time() - t3
            assert choice.get("id") in unlabelled, f"/activelearning/{strategy} chose {choice.get('id')!r}"
            if strategy == "hybrid_disagreement":
                assert choice["id"] == best and choice.get("source") == "score of the served model", choice
                assert seconds < 2.0, f"/activelearning/{strategy} took {seconds:.1f} s"
            _log(
                f"/activelearning/{strategy}: next study {choice['id']} (weight {choice.get('weight')}), "
                f"{seconds:.2f} s"
            )

    return run_check(check, work, args.keep, _log)


if __name__ == "__main__":
    sys.exit(main())
