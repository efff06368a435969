"""End-to-end check of the bundle in a real MONAI Label 0.8.5 server on 127.0.0.1.

1. trains a small model with the bundle (3 mm phantom, 150 supervised steps) and puts it in a copy of the bundle;
2. starts MONAI Label's own sample app ``monaibundle`` with that bundle (``python -m monailabel.main start_server``
   from the MONAI Label environment, offline: ``--conf zoo_source ngc``);
3. asks ``/info/``, POSTs ``/infer/<model>`` for a phantom scan and checks the returned label volume: shape, affine,
   label values, Dice against the ground truth above a floor;
4. sends several inference requests at once and checks that every one returns the same, correct labels;
5. stops the server by its process id.

    bash experiments/monailabel/setup_env.sh                       # once: .monailabel-venv
    python experiments/monailabel/check_server.py --monailabel-python .monailabel-venv/bin/python

Run from this project's own environment (it trains with it). Exit code 0 when every check passes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import MODEL, dice, free_port, logger, monailabel_python, run_check, start_server, wait_ready  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
_log = logger("check_server")
DICE_FLOOR = 0.7


def train_bundle(work: Path, steps: int, phantom_dir: Path) -> Path:
    """A copy of the bundle with models/model.pt from a short training run on the 3 mm phantom."""
    from monai_hybrid.bundle import run_bundle, write_bundle
    from monai_hybrid.data import ensure_phantom
    from monai_hybrid.model_settings import SETTINGS_FILE

    data = ensure_phantom(phantom_dir, resolution=3.0, progress=False)
    overrides = {
        "pixdim": [3.0, 3.0, 3.0],
        "roi_size": [64, 64],
        "generate_demo_data": False,
        "dataset_dir": str(data),
        "progress_bar": False,
    }
    run_bundle(
        "pretrain",
        ["common.yaml", "pretrain.yaml"],
        work / "train",
        **{"method#mode": "supervised"},
        epochs=1,
        iterations_per_epoch=steps,
        val_interval=1,
        **overrides,
    )
    # the bundle as a user gets it, with the trained weights and the settings recorded beside them: its
    # inference.yaml is served unchanged (3 mm and the 64 x 64 window come from model_settings.json)
    bundle = write_bundle(work / "app" / "model" / MODEL)
    trained = work / "train" / "models" / "pretrain"
    shutil.copy(trained / "model_final.pt", bundle / "models" / "model.pt")
    shutil.copy(trained / SETTINGS_FILE, bundle / "models" / SETTINGS_FILE)
    return data


def start_sample_app(python: str, work: Path, port: int) -> subprocess.Popen:
    """MONAI Label's own sample app ``monaibundle``, copied into ``work/app`` (its ``model/`` is there), offline."""
    sample_app = Path(
        subprocess.check_output(
            [
                python,
                "-c",
                "import monailabel, os; print(os.path.join(os.path.dirname(monailabel.__file__), "
                "'..', 'monailabel', 'sample-apps', 'monaibundle'))",
            ],
            text=True,
        ).strip()
    )
    if not sample_app.is_dir():  # the wheel installs sample-apps beside the package
        sample_app = Path(
            subprocess.check_output(
                [
                    python,
                    "-c",
                    "import sys, os; print(os.path.join(sys.prefix, 'monailabel', 'sample-apps', 'monaibundle'))",
                ],
                text=True,
            ).strip()
        )
    app = work / "app"
    for item in sample_app.iterdir():
        if item.name != "model":
            (shutil.copytree if item.is_dir() else shutil.copy)(item, app / item.name)
    conf = {"zoo_source": "ngc", "skip_trainers": "true", "preload": "false"}
    return start_server(python, work, app, port, conf)


def infer(url: str, image_id: str, out: Path) -> Path:
    req = urllib.request.Request(f"{url}/infer/{MODEL}?image={image_id}&output=image", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=300) as r:
        out.write_bytes(r.read())
    return out


def check_label(path: Path, ref_image: Path, ref_label: Path) -> float:
    seg = nib.load(str(path))
    img = nib.load(str(ref_image))
    gt = np.asarray(nib.load(str(ref_label)).dataobj)
    pred = np.asarray(seg.dataobj).astype(np.int64)
    assert pred.shape == img.shape, f"shape {pred.shape} != input {img.shape}"
    assert np.allclose(seg.affine, img.affine, atol=1e-3), f"affine\n{seg.affine}\n!= input\n{img.affine}"
    assert set(np.unique(pred)) <= {0, 1, 2, 3}, f"label values {np.unique(pred)}"
    return float(np.mean([dice(pred, gt, k) for k in (1, 2, 3)]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--monailabel-python", default=str(REPO / ".monailabel-venv" / "bin" / "python"))
    p.add_argument("--steps", type=int, default=150, help="training steps of the served model")
    p.add_argument("--concurrent", type=int, default=4, help="simultaneous inference requests")
    p.add_argument("--phantom-dir", default=None, help="3 mm phantom to use or create (default: in the work folder)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args(argv)
    args.monailabel_python = monailabel_python(args.monailabel_python, _log)
    if args.monailabel_python is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="monailabel-check-"))

    def check(state: dict) -> None:
        t0 = time.time()
        data = train_bundle(work, args.steps, Path(args.phantom_dir) if args.phantom_dir else work / "phantom")
        _log(f"trained the served model in {time.time() - t0:.0f} s")
        site = data / "site_a_t1w"
        entry = json.loads((site / "datalist.json").read_text())["test"][0]
        (work / "studies").mkdir()
        shutil.copy(site / entry["image"], work / "studies" / "img001.nii.gz")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = state["server"] = start_sample_app(args.monailabel_python, work, port)
        info = wait_ready(url, server)
        assert MODEL in info["models"], f"/info/ lists {list(info['models'])}"
        labels = info["models"][MODEL]["labels"]
        _log(f"server {server.pid} ready; /info/ model labels: {labels}")
        t1 = time.time()
        result = infer(url, "img001", work / "label.nii.gz")
        score = check_label(result, site / entry["image"], site / entry["label"])
        _log(
            f"/infer/{MODEL}: label volume checked (shape, affine, values), mean foreground Dice {score:.3f} "
            f"(floor {DICE_FLOOR}), {time.time() - t1:.1f} s"
        )
        assert score > DICE_FLOOR, f"Dice {score:.3f} below {DICE_FLOOR}"
        first = np.asarray(nib.load(str(result)).dataobj)
        with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
            outs = list(pool.map(lambda i: infer(url, "img001", work / f"label_{i}.nii.gz"), range(args.concurrent)))
        for out in outs:
            assert check_label(out, site / entry["image"], site / entry["label"]) > DICE_FLOOR
            assert np.array_equal(np.asarray(nib.load(str(out)).dataobj), first), "concurrent results differ"
        _log(f"{args.concurrent} concurrent requests: all returned the same correct labels")

    return run_check(check, work, args.keep, _log)


if __name__ == "__main__":
    sys.exit(main())
