"""The bundle shipped inside the package: where it is, writing a ready copy, and running its configs from Python
(the benchmark, the tests)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_hybrid.atomic_write import write_text_atomic
from monai_hybrid.stacks import OVERLAYS, RUNS, config_stack

__all__ = [
    "BUNDLE_NAME",
    "configure_app_training",
    "TRAIN_CONFIGS",
    "default_bundle_dir",
    "flag",
    "grow_served_model",
    "optional_path",
    "refuse_moved",
    "require_overlay",
    "run_bundle",
    "start_run",
    "write_bundle",
    "write_monailabel_app",
    "write_train_config",
]

logger = logging.getLogger(__name__)

BUNDLE_NAME = "hybrid_brain_mri_segmentation"
#: What a bundle folder is made of (models/ starts empty).
_BUNDLE_PARTS = ("configs", "docs", "LICENSE")

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def default_bundle_dir() -> Path:
    """The bundle shipped with the package: ``bundles/hybrid_brain_mri_segmentation`` of a source checkout, which the
    wheel installs as ``monai_hybrid/bundles/hybrid_brain_mri_segmentation``. Read its configs from here; train in a
    copy (``write_bundle``).

    Raises:
        FileNotFoundError: if neither place holds the bundle's ``configs/`` (a broken install).
    """
    package = Path(__file__).resolve().parent
    candidates = (package / "bundles" / BUNDLE_NAME, package.parent / "bundles" / BUNDLE_NAME)  # wheel, checkout
    for folder in candidates:
        if (folder / "configs").is_dir():
            return folder
    raise FileNotFoundError(
        f"The bundle {BUNDLE_NAME!r} is in none of {[str(c) for c in candidates]}; reinstall monai-hybrid "
        "(pip install monai-hybrid, or pip install -e . in a checkout)."
    )


def write_bundle(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a ready bundle folder (``configs/``, ``docs/``, ``LICENSE``, an empty ``models/``) to ``out_dir``.

    Args:
        out_dir: the new bundle folder; run ``python -m monai.bundle run ...`` from inside it.
        overwrite: replace the configs and docs of a bundle already in ``out_dir`` (its ``models/``, data and outputs
            are kept).

    Returns:
        ``out_dir`` as a path.

    Raises:
        FileExistsError: ``out_dir`` already holds ``configs/`` and ``overwrite`` is false.
    """
    out = Path(out_dir)
    source = default_bundle_dir()
    if (out / "configs").exists() and not overwrite:
        raise FileExistsError(
            f"'{out}' already holds a bundle (configs/); choose another folder, or pass --overwrite to replace its "
            "configs and docs (models/ and data are kept)."
        )
    out.mkdir(parents=True, exist_ok=True)
    for part in _BUNDLE_PARTS:
        src, dst = source / part, out / part
        if src.is_dir():
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    (out / "models").mkdir(exist_ok=True)
    return out


def _checked_class_names(class_names: Sequence[str]) -> list[str]:
    names = list(class_names)
    if len(names) < 2 or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"class_names must be at least two distinct names, background first; got {names}.")
    if names[0] != "background":
        raise ValueError(f"class_names must start with 'background' (label 0); got {names}.")
    return names


def configure_app_training(
    bundle_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    class_weights: Mapping[str, float] | None = None,
    overlays: Sequence[str] = (),
) -> Path:
    """Set what a bundle's MONAI Label Train does, in one step: the classes the app labels (``configs/metadata.json``
    output channels, the labels MONAI Label shows), and ``configs/train.yaml`` written again with ``overlays`` and the
    ``class_names`` and ``class_weights`` set through MONAI's ConfigParser (``write_train_config``). The bundle's
    sources (``common.yaml``, ``finetune.yaml``) are left as they are. Fine-tuning a model that labels the first
    classes grows its mask head by the ones appended (``new_class_init``).

    Args:
        bundle_dir: the app's bundle folder.
        class_names: the classes, background first (default: the bundle's).
        class_weights: the Dice-CE weight of the classes named (``{"lesion": 50.0}``; the others 1).
        overlays: the bundle's overlays composed into the Train (``class_balanced`` for a rare class).

    Returns:
        The ``configs/train.yaml`` written.

    Raises:
        ValueError: fewer than two names, names repeated or not strings, or the first is not ``background``; a
            weight for a class not among the names or not a positive number; an overlay that does not apply to
            fine-tuning (before anything is written).
    """
    from monai_hybrid.losses import class_weight_tensor

    configs = Path(bundle_dir) / "configs"
    names = _checked_class_names(class_names) if class_names is not None else _configured_class_names(configs)
    if class_weights:
        class_weight_tensor(names, class_weights)
    config_stack("finetune", overlays)
    overrides: dict[str, Any] = {}
    if class_names is not None:
        overrides["class_names"] = names
        metadata_path = configs / "metadata.json"
        metadata = json.loads(metadata_path.read_text())
        pred = metadata["network_data_format"]["outputs"]["pred"]
        pred["num_channels"] = len(names)
        pred["channel_def"] = {str(i): name for i, name in enumerate(names)}
        metadata_path.write_text(json.dumps(metadata, indent=4) + "\n")
    if class_weights:
        overrides["class_weights"] = {name: float(w) for name, w in class_weights.items()}
    return write_train_config(configs, overlays, overrides)


def _configured_class_names(configs: Path) -> list[str]:
    """The ``class_names`` of the bundle config folder ``configs`` (its ``common.yaml``)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(configs / "common.yaml"))
    return list(parser["class_names"])


def write_monailabel_app(
    app_dir: str | os.PathLike,
    models_from: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    class_weights: Mapping[str, float] | None = None,
    train_overlays: Sequence[str] = (),
) -> Path:
    """Write a MONAI Label app that serves, fine-tunes and ranks scans with this project's bundle.

    A hospital starts with a pretrained model and nothing fine-tuned: when ``models_from`` holds a pretraining
    (``pretrain/model.pt`` and its ``model_settings.json``) but no ``model.pt``, the pretrained model is copied to
    ``models/model.pt`` and served until the first Train replaces it (the log says so).

    Args:
        app_dir: the app folder: ``main.py`` and the bundle in ``model/hybrid_brain_mri_segmentation``.
        models_from: a ``models/`` folder of a trained bundle (``model.pt``, ``model_settings.json``,
            ``pretrain/model_final.pt``, or only ``pretrain/`` after the main pretraining job) to copy into the app's
            bundle.
        class_names: the classes the app labels (default: the bundle's), background first
            (``configure_app_training``):
            the served model's classes followed by new ones (a lesion class) grow its mask head now
            (``grow_served_model``), so that the server's network has a channel for each from the start.
        class_weights: the Dice-CE weight of classes that the Train should not neglect (``{"lesion": 50.0}``;
            ``configure_app_training``).
        train_overlays: the bundle's overlays composed into the Train's ``configs/train.yaml`` (``class_balanced``
            for a rare class; ``write_train_config``).

    Returns:
        ``app_dir`` as a path.

    Raises:
        FileNotFoundError: ``models_from`` is given but does not exist.
        ValueError: ``class_names`` is not a list of classes, or not the served model's classes followed by new ones;
            ``class_weights`` names another class; an overlay that does not apply to fine-tuning (before anything is
            written).
    """
    if class_names is not None:  # before anything is written
        _checked_class_names(class_names)
        if models_from is not None and Path(models_from).is_dir():
            _served_classes_grow_to(Path(models_from), class_names)
    if class_weights:
        from monai_hybrid.losses import class_weight_tensor

        names = class_names if class_names is not None else _configured_class_names(default_bundle_dir() / "configs")
        class_weight_tensor(names, class_weights)
    config_stack("finetune", train_overlays)  # an unknown overlay, or one that does not apply, is refused here
    app = Path(app_dir)
    app.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(__file__).resolve().parent / "monailabel_app" / "main.py", app / "main.py")
    bundle = write_bundle(app / "model" / BUNDLE_NAME, overwrite=True)
    if class_names is not None or class_weights or train_overlays:
        configure_app_training(bundle, class_names, class_weights, train_overlays)
    if models_from is not None:
        source = Path(models_from)
        if not source.is_dir():
            raise FileNotFoundError(f"'{source}' is not a folder; pass the models/ folder of a trained bundle.")
        shutil.copytree(source, bundle / "models", dirs_exist_ok=True)
        models = bundle / "models"
        pretrained = models / "pretrain" / "model.pt"
        if not (models / "model.pt").is_file() and pretrained.is_file():
            shutil.copy2(pretrained, models / "model.pt")
            shutil.copy2(pretrained.with_name("model_settings.json"), models / "model_settings.json")
            logger.info(
                "No fine-tuned model in '%s': the app serves the pretrained model (%s) until the first Train.",
                source,
                pretrained,
            )
    if class_names is not None and (bundle / "models" / "model.pt").is_file():
        grow_served_model(bundle / "models", class_names)
    return app


def _served_settings(models: Path) -> Path | None:
    """The ``model_settings.json`` of the model an app serves from ``models`` (``model.pt``'s, else the
    pretraining's)."""
    for path in (models / "model_settings.json", models / "pretrain" / "model_settings.json"):
        if path.is_file():
            return path
    return None


def _served_classes_grow_to(models: Path, class_names: Sequence[str]) -> None:
    """Refuse ``class_names`` that are neither the served model's classes nor those followed by new ones."""
    from monai_hybrid.networks.head_growth import appended_classes

    path = _served_settings(models)
    if path is None:
        return
    served = list(json.loads(path.read_text())["class_names"])
    if served != list(class_names) and appended_classes(served, class_names) is None:
        raise ValueError(
            f"class_names {list(class_names)}: the model in '{models}' labels {served} ({path}); give its classes "
            "followed by the ones to add (the mask head grows), or another model."
        )


def grow_served_model(models: str | os.PathLike, class_names: Sequence[str], new_class_init: str = "zero") -> bool:
    """Grow the mask head of the served model (``models/model.pt`` and its ``model_settings.json``) by the classes
    ``class_names`` appends to its own, by the rule ``new_class_init`` (``monai_hybrid.networks.head_growth``): a
    server then builds the network of the app's classes from the start, and serves the trained classes as before
    until a Train teaches it the new ones. The file keeps the weights only (``{"model": state dict}``).

    Returns:
        Whether the model was grown (``False``: it already labels ``class_names``).

    Raises:
        ValueError: ``class_names`` is not the model's classes followed by new ones.
    """
    import torch

    from monai_hybrid.atomic_write import atomic_path
    from monai_hybrid.model_settings import save_model_settings
    from monai_hybrid.networks.head_growth import NewClassRule, grow_state_dict

    models = Path(models)
    _served_classes_grow_to(models, class_names)
    settings = json.loads((models / "model_settings.json").read_text())
    served = list(settings["class_names"])
    if served == list(class_names):
        return False
    checkpoint = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    state = (
        checkpoint["model"]
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict)
        else checkpoint
    )
    grown, added = grow_state_dict(state, served, class_names, NewClassRule.parse(new_class_init))
    with atomic_path(models / "model.pt") as tmp:
        torch.save({"model": grown}, tmp)
    save_model_settings({**settings, "class_names": list(class_names)}, models)
    logger.info(
        "The served model '%s' labels %s: its mask head grew by %s (%s); a Train teaches the new classes.",
        models / "model.pt",
        served,
        [entry["class"] for entry in added],
        added[0]["how"],
    )
    return True


#: The config files merged into configs/train.yaml: the fine-tuning run.
TRAIN_CONFIGS = RUNS["finetune"]


def write_train_config(
    configs_dir: str | os.PathLike, overlays: Sequence[str] = (), overrides: Mapping[str, Any] | None = None
) -> Path:
    """Write ``configs/train.yaml``: the fine-tuning run (``common.yaml`` + ``pretrain.yaml`` + ``finetune.yaml``,
    then ``overlays``, keys of ``monai_hybrid.stacks.OVERLAYS``) merged into one file, with ``overrides`` (config ids
    and values, e.g. an app's ``class_names``) set through MONAI's ConfigParser.

    MONAI Label's bundle train task runs ``configs/train.yaml`` alone (``run`` with its own overrides of
    ``train#dataset#data``, ``validate#dataset#data``, ``train#trainer#max_epochs``, ``device`` and
    ``train#handlers``), so the composed run is written out as the single file it reads. The bundle folder ships the
    plain one (no overlay, no override; ``tests/bundle/test_train_config.py`` keeps it current): edit the sources and
    write it again with this function.

    Returns:
        The path written.
    """
    import yaml
    from monai.bundle import ConfigParser

    configs = Path(configs_dir)
    names = config_stack("finetune", overlays)
    parser = ConfigParser()
    parser.read_config([str(configs / name) for name in names])
    for key, value in (overrides or {}).items():
        parser[key] = value
    settings = f" with {', '.join(f'{k}={v!r}' for k, v in overrides.items())}" if overrides else ""
    header = (
        "# GENERATED by monai_hybrid.bundle.write_train_config from " + " + ".join(names) + settings + ": the\n"
        "# fine-tuning run as one file, for MONAI Label's bundle train task (it reads configs/train.yaml alone).\n"
        "# Edit the sources, not this.\n"
    )
    merged = {k: v for k, v in parser.get().items() if k != "_meta_"}
    return write_text_atomic(configs / "train.yaml", header + yaml.safe_dump(merged, sort_keys=False, width=120))


def start_run(num_threads: Any = None) -> None:
    """What every run of the bundle does first, in its ``initialize`` step (pretrain, fine-tune, multi-GPU, inference,
    evaluate): the project's error message becomes the last thing on the screen when the run stops
    (``errors.install``), and the run's PyTorch threads are set when ``num_threads`` is (``threads.use_threads``;
    ``None``: PyTorch's default, or the share MONAI Label's app already set).
    """
    from monai_hybrid import errors
    from monai_hybrid.threads import use_threads

    errors.install()
    if num_threads not in (None, "", "null", "None", "none"):
        use_threads(num_threads, who="bundle run")


def flag(value: Any, key: str) -> bool:
    """A yes/no setting of a bundle config as a ``bool``.

    ``python -m monai.bundle run ... --resume false`` hands the config the *string* ``'false'`` (Fire parses only
    Python literals), which a plain ``$not @resume`` would take as true. The configs read their yes/no keys through
    this function.

    Args:
        value: ``True``/``False``, ``0``/``1``, or a string such as ``'true'``, ``'False'``, ``'no'``.
        key: the config key, named in the error.

    Raises:
        ValueError: for anything else, naming the key.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(
        f"Config key '{key}' must be true or false, got {value!r}; pass e.g. --{key} true or --{key} false."
    )


_NONE = ("", "none", "null", "false", "no")


def optional_path(value: Any) -> str | None:
    """A path setting that may be switched off, as a string or ``None``.

    ``python -m monai.bundle run ... --pretrained_checkpoint None`` never reaches the config: MONAI's command line
    drops every override whose value is ``None`` (it means "not given"), so the default applies. The configs read
    such keys through this function, and ``none`` (any case), ``null``, ``false``, ``no`` or an empty string mean no
    path: ``--pretrained_checkpoint none``.

    Args:
        value: ``None``, one of those words, or a path.
    """
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in _NONE:
        return None
    return str(value)


def refuse_moved(value: Any, old: str, group: str) -> None:
    """Stop a run that sets a key the bundle has moved, with the key's new name.

    MONAI's command line accepts any key, so ``--mode supervised`` (bundle 0.5) would otherwise set a key that
    nothing reads and run the default method. The config declares the old key as ``null`` and calls this first in
    its ``initialize`` step (with the group's name, since MONAI rewrites ``#`` inside expressions).

    Args:
        value: the old key's value (``None`` unless set).
        old: the old key.
        group: the key it moved under (``method``): the new key is ``<group>#<old>``.

    Raises:
        ValueError: ``value`` is not ``None``: the old key was set.
    """
    if value is not None:
        new = f"{group}#{old}"
        raise ValueError(
            f"Config key '{old}' moved to '{new}' in bundle 0.6: use --{new} {value} (it was set to {value!r} and "
            "nothing reads it)."
        )


def require_overlay(value: Any, key: str, overlay: str, composed: bool = False) -> None:
    """Stop a run whose setting needs the data an overlay declares, when the overlay is not in its config stack
    (or is there with the setting off).

    ``unlabeled_weight`` > 0 reads unlabelled scans, which only ``configs/unlabeled.yaml`` declares; without it
    MONAI's command line would accept ``--unlabeled_weight 0.5`` and the run would train on the labelled data
    alone. ``pretrain.yaml`` calls this first thing (its ``initialize`` step, through ``unlabeled_check``) with
    ``composed`` false, and the overlay replaces that call by one with ``composed`` true.

    Args:
        value: the setting's value (a number; > 0 is on).
        key: the setting (``unlabeled_weight``), named in the error.
        overlay: the overlay that declares what the setting reads (a key of ``monai_hybrid.stacks.OVERLAYS``).
        composed: whether the overlay is in the run's stack.

    Raises:
        ValueError: ``value`` > 0 without the overlay (the message gives the ``--config_file`` that composes it),
            or ``value`` <= 0 with it (it would read the data for nothing).
    """
    on = float(value) > 0
    if on and not composed:
        file, runs = OVERLAYS[overlay]
        stacks = " or ".join(f'"$(monai-hybrid configs {run} {overlay})"' for run in runs)
        raise ValueError(
            f"Config key '{key}' is {value!r} but the run does not compose the '{overlay}' overlay (configs/{file}),"
            f" which declares the data it reads: use --config_file {stacks}, or leave {key} at 0."
        )
    if composed and not on:
        raise ValueError(
            f"Config key '{key}' is {value!r} with the '{overlay}' overlay composed: set {key} > 0, or leave the "
            "overlay out of --config_file."
        )


def run_bundle(
    run_id: str,
    configs: Sequence[str],
    bundle_root: str | os.PathLike,
    bundle_dir: str | os.PathLike | None = None,
    **overrides: Any,
) -> Any:
    """Run ``run_id`` of the bundle's ``configs`` (file names in its ``configs/``), exactly as
    ``python -m monai.bundle run`` does, with ``bundle_root`` as the run's folder.

    Returns:
        The finished ``monai.bundle.ConfigWorkflow`` (its ``parser`` holds the engines and their state).
    """
    from monai.bundle import ConfigWorkflow

    bundle = Path(bundle_dir) if bundle_dir is not None else default_bundle_dir()
    Path(bundle_root).mkdir(parents=True, exist_ok=True)
    workflow = ConfigWorkflow(
        config_file=[str(bundle / "configs" / c) for c in configs],
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=False,
        run_id=run_id,
        **{"bundle_root": str(bundle_root), **overrides},
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow
