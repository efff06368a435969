"""A MONAI Label app for this project's bundle: serve it, fine-tune it from the datastore's labels, and choose the
next scan to annotate with the hybrid model itself.

Written to an app folder by ``monai-hybrid monailabel-app DIR`` (with the bundle in ``DIR/model/<name>``); run it
with MONAI Label 0.8.5 in its own environment, where ``monai_hybrid`` is installed too:

    python -m monailabel.main start_server --app DIR --studies STUDIES --conf models hybrid_brain_mri_segmentation

* inference: MONAI Label's ``BundleInferTask`` on ``configs/inference.yaml`` and ``models/model.pt``; an image id
  the datastore does not know is answered 404 before any inference;
* training (the Train button, ``POST /train/<model>``): MONAI Label's ``BundleTrainTask`` on ``configs/train.yaml``,
  the bundle's fine-tuning run: from ``models/pretrain/model_final.pt``, the pretrained hybrid model, on every
  study with a final label whose shape matches its image (the others are named in the log and left out); with
  ``unlabeled_weight`` > 0 it also denoises the studies without one (semi-supervised: that request's run composes
  the bundle's ``configs/unlabeled.yaml`` overlay on ``train.yaml``); the new ``models/model.pt`` is served by the
  next ``/infer/``. An app written with a class added (``monai-hybrid monailabel-app --class-names``, a lesion class)
  serves a model whose mask head grew by it; the app refuses to start when its labels and the served model's classes
  differ (``check_served_classes``);
* scoring (``hybrid_disagreement``, a MONAI Label scoring method): in the background after start-up, after each
  Train and after each next-scan request (MONAI Label's ``auto_update_scoring``), every unlabelled study not yet
  scored with the served model gets its disagreement score (``monai_hybrid.active_learning``: the model's masks at
  a few small noise levels), stored in the datastore as image info;
* next scan (``POST /activelearning/<strategy>``): ``random`` and ``first`` (MONAI Label's), and
  ``hybrid_disagreement``: the unlabelled study with the highest stored score (no inference in the request).
* threads: MONAI Label runs the server (inferences), a Train and the scoring as processes side by side; each one
  builds this app, which gives its PyTorch pool its share of the cores (``--conf threads N``; default ``auto``: the
  cores divided among the three, at least 1), logged at start. (MONAI Label 0.8.5 runs each inference on its event
  loop, so the server answers inference requests one at a time.)
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import time
from collections.abc import Iterable, Mapping

from fastapi import HTTPException
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.scoring import ScoringMethod
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask

from monai_hybrid.checkpoint_io import model_stamp

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "hybrid_brain_mri_segmentation"
STRATEGY = "hybrid_disagreement"
# the image-info entry the scoring writes and the strategy reads: {"score", "model" (stamp), "seconds"}
SCORE_INFO_KEY = "hybrid_disagreement"
# the processes that run side by side and share the cores: the server's inferences, a Train, the scoring
APP_JOBS = 3
# request keys this app adds to its own copy of a train request (never to the shared task object)
UNLABELED_KEY = "hybrid_unlabeled_images"


def served_model(bundle_path: str) -> str:
    """The weights MONAI Label serves from the bundle at ``bundle_path``."""
    return os.path.join(bundle_path, "models", "model.pt")


def choose_from_scores(infos: Mapping[str, Mapping], stamp: str, rng: random.Random | None = None) -> dict:
    """The next study from the scores stored in the studies' image info.

    Args:
        infos: image id -> its datastore image info (``SCORE_INFO_KEY`` holds ``score`` and ``model``).
        stamp: ``model_stamp`` of the served model.
        rng: random source of the fallback (default: ``random``'s).

    Returns:
        ``{"id", "weight", "source"}``: the highest score made with the served model; else the highest score made
        with an earlier model (scoring after the last Train still running); else a random study, ``weight`` 0,
        with ``source`` saying that no score exists yet. ``{}`` when ``infos`` is empty.
    """
    if not infos:
        return {}
    scores = {i: info.get(SCORE_INFO_KEY) or {} for i, info in infos.items()}
    current = {i: s["score"] for i, s in scores.items() if "score" in s and s.get("model") == stamp}
    earlier = {i: s["score"] for i, s in scores.items() if "score" in s}
    if current:
        best = max(current, key=current.get)
        if len(current) < len(infos):
            logger.info("%s: %d of %d unlabelled studies scored so far", STRATEGY, len(current), len(infos))
        return {"id": best, "weight": current[best], "source": "score of the served model"}
    if earlier:
        best = max(earlier, key=earlier.get)
        logger.warning("%s: no study scored with the served model yet; using an earlier model's scores", STRATEGY)
        return {"id": best, "weight": earlier[best], "source": "score of an earlier model (rescoring under way)"}
    best = (rng or random).choice(sorted(infos))
    logger.warning(
        "%s: no study has a score yet (scoring runs in the background after start-up and after each Train; "
        "POST /scoring/%s starts it now): chose %s at random",
        STRATEGY,
        STRATEGY,
        best,
    )
    return {"id": best, "weight": 0.0, "source": "random: no score yet"}


def _spatial_shape(path: str) -> tuple[int, ...] | None:
    """The shape of the image file at ``path`` without trailing singleton axes, from its header; ``None`` when
    nibabel cannot read it (DICOM series, NRRD)."""
    import nibabel as nib

    try:
        shape = tuple(int(s) for s in nib.load(path).shape)
    except Exception:  # noqa: BLE001 - any format nibabel cannot read is left unchecked
        return None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def mismatched_labels(records: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The labels whose shape differs from their image's.

    Args:
        records: ``{"image": path, "label": path}`` items (MONAI Label's ``datastore.datalist()``).

    Returns:
        label path -> ``"<label> (shape ...) does not match <image> (shape ...)"``, for each mismatched label.
        Files nibabel cannot read are not checked.
    """
    problems = {}
    for record in records:
        image, label = _spatial_shape(record["image"]), _spatial_shape(record["label"])
        if image is not None and label is not None and image != label:
            problems[record["label"]] = (
                f"{record['label']} (shape {label}) does not match {record['image']} (shape {image})"
            )
    return problems


class _MatchingLabels:
    """A view of a datastore whose ``datalist()`` leaves out the labels listed in ``excluded`` (a train request's
    own view: MONAI Label's train task reads the labelled studies through ``datalist()``)."""

    def __init__(self, datastore: Datastore, excluded: set[str]) -> None:
        self._datastore = datastore
        self._excluded = excluded

    def datalist(self, *args, **kwargs):
        return [d for d in self._datastore.datalist(*args, **kwargs) if d and d.get("label") not in self._excluded]

    def __getattr__(self, name):
        return getattr(self._datastore, name)


def matching_datalist_view(datastore: Datastore):
    """The datastore seen by one train request: its labelled studies whose label matches the image's shape.

    Raises:
        ValueError: no labelled study is left; the message names every mismatched label.
    """
    records = [d for d in datastore.datalist() if d and d.get("label")]
    problems = mismatched_labels(records)
    if not problems:
        return datastore
    for line in problems.values():
        logger.warning("Train: left out, label shape differs from its image: %s", line)
    if len(problems) == len(records):
        raise ValueError(
            "Train: no labelled study left; every final label's shape differs from its image's: "
            + "; ".join(problems.values())
            + ". Save each label on its image's grid again (PUT /datastore/label) and press Train."
        )
    return _MatchingLabels(datastore, set(problems))


class HybridDisagreementScoring(ScoringMethod):
    """Scores every unlabelled study not yet scored with the served model, and stores the score in its image info.

    MONAI Label runs it in the background (its own process) after start-up, after each Train and after each
    next-scan request; a study already scored with the current ``models/model.pt`` is skipped.

    Args:
        bundle_path: the bundle folder (``configs/inference.yaml``, ``models/model.pt``).
    """

    def __init__(self, bundle_path: str) -> None:
        super().__init__("Hybrid model: disagreement of the mask head across small noise levels, per unlabelled study")
        self.bundle_path = bundle_path

    def __call__(self, request, datastore: Datastore):
        stamp = model_stamp(served_model(self.bundle_path))
        images = datastore.get_unlabeled_images()
        todo = [i for i in images if (datastore.get_image_info(i).get(SCORE_INFO_KEY) or {}).get("model") != stamp]
        if not stamp or not todo:
            return {"total": len(images), "scored": 0, "skipped": len(images), "model": stamp}
        from monai_hybrid.active_learning import BundleScorer

        scorer = BundleScorer(self.bundle_path, device=_scoring_device(request))
        seconds = []
        for image_id in todo:
            start = time.perf_counter()
            score = scorer.score(scorer.load(datastore.get_image_uri(image_id)))
            seconds.append(time.perf_counter() - start)
            info = {"score": score, "model": stamp, "seconds": round(seconds[-1], 3)}
            datastore.update_image_info(image_id, {SCORE_INFO_KEY: info})
            logger.info("%s scoring: %s -> %.5f in %.1f s", STRATEGY, image_id, score, seconds[-1])
        summary = {
            "total": len(images),
            "scored": len(todo),
            "skipped": len(images) - len(todo),
            "seconds_per_study": round(sum(seconds) / len(seconds), 3),
            "model": stamp,
        }
        logger.info("%s scoring: %s", STRATEGY, summary)
        return summary


def _scoring_device(request: Mapping) -> str:
    """The device of a scoring request: its ``device`` (MONAI Label sends a name or a list of names), else the
    first GPU when there is one."""
    device = request.get("device")
    if isinstance(device, list | tuple):
        device = device[0] if device else None
    if device:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class HybridDisagreement(Strategy):
    """The unlabelled study with the highest stored disagreement score (``HybridDisagreementScoring``).

    Args:
        bundle_path: the bundle folder (its ``models/model.pt`` stamps the scores that are current).
    """

    def __init__(self, bundle_path: str) -> None:
        super().__init__("Hybrid model: disagreement of the mask head across small noise levels (stored scores)")
        self.bundle_path = bundle_path

    def __call__(self, request, datastore: Datastore):
        images = datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels"))
        if not images:
            return None
        stamp = model_stamp(served_model(self.bundle_path))
        choice = choose_from_scores({i: datastore.get_image_info(i) for i in images}, stamp)
        logger.info("%s: next study %s (%s, weight %s)", STRATEGY, choice["id"], choice["source"], choice["weight"])
        return choice


class HybridTrainTask(BundleTrainTask):
    """MONAI Label's bundle train task, with what this app adds to each request, kept in that request's own copy:

    * labels whose shape differs from their image are left out (named in the log); none left: the request fails
      with the list;
    * ``unlabeled_weight`` > 0 (the Train panel) also denoises the studies that have no final label yet: the run
      composes the bundle's unlabeled overlay (``configs/unlabeled.yaml``) on ``configs/train.yaml``, for that
      request only (``train.yaml`` alone has no unlabelled data and refuses the weight);
    * one device: the bundle has no multi-GPU train config (MONAI Label would skip the training).
    """

    def config(self):
        return {**super().config(), "unlabeled_weight": 0.0, "multi_gpu": False}

    def __call__(self, request, datastore: Datastore):
        request = {**request, "multi_gpu": False}
        weight = float(request.get("unlabeled_weight", 0.0) or 0.0)
        images = datastore.get_unlabeled_images() if weight > 0 else []
        request[UNLABELED_KEY] = [{"image": datastore.get_image_uri(i)} for i in images]
        return super().__call__(request, matching_datalist_view(datastore))

    def run_single_gpu(self, request, overrides):
        semi = semi_supervised_overrides(request)
        if not semi:
            return super().run_single_gpu(request, overrides)
        # the request's own copy of the task, whose run composes the overlay: the shared task is left as it is
        task = copy.copy(self)
        task.bundle_config_path = [self.bundle_config_path, unlabeled_overlay(self.bundle_path)]
        return super(HybridTrainTask, task).run_single_gpu(request, {**overrides, **semi})


def app_class_names(bundle_path: str) -> list[str] | None:
    """The classes the app labels: the bundle's ``configs/metadata.json`` output ``channel_def`` (what MONAI Label
    shows the annotator), in channel order; ``None`` when it has none."""
    try:
        with open(os.path.join(bundle_path, "configs", "metadata.json")) as f:
            channels = json.load(f)["network_data_format"]["outputs"]["pred"]["channel_def"]
    except (OSError, KeyError, ValueError):
        return None
    return [channels[k] for k in sorted(channels, key=int)]


def served_class_names(bundle_path: str) -> list[str] | None:
    """The classes of the served model (``models/model_settings.json``); ``None`` when it is not there."""
    try:
        with open(os.path.join(bundle_path, "models", "model_settings.json")) as f:
            return list(json.load(f)["class_names"])
    except (OSError, KeyError, ValueError):
        return None


def check_served_classes(bundle_path: str) -> None:
    """Refuse to start when the app labels other classes than the served model: MONAI Label builds the inference
    network once, for the served model, and would offer the annotator labels the model has no channel for.

    Raises:
        RuntimeError: naming both class lists and the command that grows the served model.
    """
    app, served = app_class_names(bundle_path), served_class_names(bundle_path)
    if app is not None and served is not None and app != served:
        raise RuntimeError(
            f"The app labels {app} (configs/metadata.json) but the served model labels {served} "
            f"(models/model_settings.json) in '{bundle_path}'. Write the app again with its classes, which grows the "
            "served model's mask head: monai-hybrid monailabel-app APP --models MODELS --class-names " + " ".join(app)
        )


def unlabeled_overlay(bundle_path: str) -> str:
    """The bundle's overlay that declares the unlabelled scans (``configs/unlabeled.yaml``)."""
    from monai_hybrid.stacks import OVERLAYS

    return os.path.join(bundle_path, "configs", OVERLAYS["unlabeled"][0])


def semi_supervised_overrides(request: Mapping) -> dict:
    """The bundle overrides of a train request's semi-supervised option (empty when it is off)."""
    weight = float(request.get("unlabeled_weight", 0.0) or 0.0)
    unlabeled = request.get(UNLABELED_KEY) or []
    if weight <= 0 or not unlabeled:
        return {}
    logger.info("Semi-supervised fine-tuning: %d unlabelled studies, weight %s", len(unlabeled), weight)
    return {"unlabeled_weight": weight, "unlabeled#dataset#data": list(unlabeled)}


def check_image_known(image, datastore: Datastore) -> None:
    """Raise a 404 when ``image`` (an infer request's) is neither a file nor an id of ``datastore``.

    Raises:
        HTTPException: 404 naming the id.
    """
    if not isinstance(image, str) or os.path.exists(image) or datastore.get_image_uri(image):
        return
    raise HTTPException(
        status_code=404,
        detail=f"Image '{image}' not found in the datastore; GET /datastore/?output=all lists the image ids, "
        "or upload the image with PUT /datastore/image.",
    )


class HybridApp(MONAILabelApp):
    def __init__(self, app_dir: str, studies: str, conf: dict) -> None:
        from monai_hybrid.threads import use_threads

        use_threads(conf.get("threads"), jobs=APP_JOBS, who=f"MONAI Label app (process {os.getpid()})")
        names = [m.strip() for m in conf.get("models", DEFAULT_MODEL).split(",") if m.strip()]
        self.bundles = {name: os.path.join(app_dir, "model", name) for name in names}
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-hybrid",
            description="Hybrid diffusion pretrained segmentation: serve, fine-tune on a few labelled scans, choose "
            "the next scan",
            version="0.3.0",
        )

    def init_infers(self):
        infers = {}
        for name, path in self.bundles.items():
            check_served_classes(path)
            task = BundleInferTask(path, self.conf)
            if not task.is_valid():
                missing = [
                    f
                    for f in ("configs/inference.yaml", "models/model.pt")
                    if not os.path.exists(os.path.join(path, f))
                ]
                raise RuntimeError(
                    f"'{path}' is not a bundle MONAI Label can serve: {missing or 'its inference config'} missing. "
                    "Write the app with a trained bundle's models/ folder: monai-hybrid monailabel-app APP --models "
                    "BUNDLE/models (a folder with only pretrain/, as the main pretraining job leaves it, serves the "
                    "pretrained model until the first Train)."
                )
            infers[name] = task
        return infers

    def init_trainers(self):
        return {name: HybridTrainTask(path, self.conf) for name, path in self.bundles.items()}

    def init_strategies(self):
        first = next(iter(self.bundles.values()))
        return {"random": Random(), "first": First(), STRATEGY: HybridDisagreement(first)}

    def init_scoring_methods(self):
        return {STRATEGY: HybridDisagreementScoring(next(iter(self.bundles.values())))}

    def infer(self, request, datastore=None):
        check_image_known(request.get("image"), datastore or self.datastore())
        return super().infer(request, datastore)
