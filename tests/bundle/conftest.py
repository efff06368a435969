"""Run the bundle's configs on the tiny phantom with tiny settings, in-process through MONAI's ConfigWorkflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from monai_hybrid.bundle import default_bundle_dir, run_bundle

BUNDLE = default_bundle_dir()

#: The config files of each run, in --config_file order.
PRETRAIN = ["common.yaml", "pretrain.yaml"]
FINETUNE = [*PRETRAIN, "finetune.yaml"]
SAMPLE = [*PRETRAIN, "sample.yaml"]
INFERENCE = ["inference.yaml"]
EVALUATE = ["inference.yaml", "evaluate.yaml"]

#: Overrides that make every training config tiny: 6 mm phantom, 32 x 32 slices, a 2-level network, 2 iterations.
#: Inference and evaluation need none: they read the model's settings from the model_settings.json beside it.
TINY_OVERRIDES = {
    "network_args#channels": [8, 16],
    "network_args#attention_levels": [False, True],
    "network_args#num_head_channels": 8,
    "network_args#norm_num_groups": 8,
    "num_train_timesteps": 20,
    "method#t_max": 5,
    "roi_size": [32, 32],
    "pixdim": [6.0, 6.0, 6.0],
    "batch_volumes": 2,
    "samples_per_volume": 2,
    "iterations_per_epoch": 2,
    "epochs": 1,
    "val_interval": 1,
    "checkpoint_every": 1,
    "generate_demo_data": False,
}


#: The model settings a tiny training run records (TINY_OVERRIDES on configs/common.yaml), for configs read alone.
TINY_SETTINGS = {
    "class_names": ["background", "csf", "grey_matter", "white_matter"],
    "in_channels": 1,
    "spatial_dims": 2,
    "pixdim": [6.0, 6.0, 6.0],
    "roi_size": [32, 32],
    "divisible_k": [16, 16, 1],
    "network_args": {
        "channels": [8, 16],
        "attention_levels": [False, True],
        "num_res_blocks": 1,
        "num_head_channels": 8,
        "norm_num_groups": 8,
        "use_flash_attention": True,
    },
    "intensity": {"lower": 0.5, "upper": 99.5, "b_min": -1.0, "b_max": 1.0},
}


def handler_index(parser, handlers_id: str, target: str) -> int:
    """Index in the handler list ``handlers_id`` of the one whose ``_target_`` ends with ``target``."""
    entries = parser[handlers_id]
    found = [i for i, h in enumerate(entries) if isinstance(h, dict) and str(h.get("_target_", "")).endswith(target)]
    assert len(found) == 1, f"{len(found)} handlers of {handlers_id} end with {target!r}"
    return found[0]


def run_config(run_id: str, configs: list[str], bundle_root: Path, **overrides):
    """Run ``run_id`` of the bundle's ``configs`` with ``bundle_root`` as the run's folder (training configs with
    ``TINY_OVERRIDES``)."""
    tiny = {} if configs[0] == "inference.yaml" else TINY_OVERRIDES
    return run_bundle(run_id, configs, bundle_root, BUNDLE, **{**tiny, **overrides})


def users_datalist(root: Path, lists: tuple[str, ...], path: Path) -> str:
    """A user's own datalist at ``path``: the lists ``lists`` of the FLAIR site in ``root``'s demo data, with absolute
    paths and only the image and label keys."""
    site = root / "demo_data" / "site_c_flair"
    data = json.loads((site / "datalist.json").read_text())
    mine = {n: [{k: str(site / v) for k, v in e.items() if k in ("image", "label")} for e in data[n]] for n in lists}
    path.write_text(json.dumps(mine))
    return str(path)


def cause(err: BaseException, kind: type) -> BaseException:
    """The first exception of type ``kind`` in the chain of ``err`` (MONAI wraps errors raised in expressions)."""
    while err is not None and not isinstance(err, kind):
        err = err.__cause__ or err.__context__
    assert err is not None, f"no {kind.__name__} in the exception chain"
    return err


@pytest.fixture
def bundle_root(tmp_path, tiny_phantom):
    """A run folder whose demo_data is the session's tiny phantom."""
    root = tmp_path / "run"
    root.mkdir()
    shutil.copytree(tiny_phantom[0], root / "demo_data")
    return root


def pretrain_run(tmp_path_factory, tiny_phantom, name: str, **overrides) -> Path:
    """A new run folder ``name`` on the tiny phantom with a tiny model pretrained with ``overrides``."""
    root = tmp_path_factory.mktemp(name) / "run"
    shutil.copytree(tiny_phantom[0], root / "demo_data")
    run_config("pretrain", PRETRAIN, root, **overrides)
    return root


@pytest.fixture(scope="module")
def pretrained_root(tmp_path_factory, tiny_phantom):
    """A run folder with a tiny pretrained hybrid model (models/pretrain/), made once per test module; copy it
    (``pretrained``) before writing into it."""
    return pretrain_run(tmp_path_factory, tiny_phantom, "pretrained")


@pytest.fixture
def pretrained(pretrained_root, tmp_path):
    """A test's own copy of ``pretrained_root``."""
    root = tmp_path / "pretrained"
    shutil.copytree(pretrained_root, root)
    return root
