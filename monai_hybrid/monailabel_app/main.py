"""A MONAI Label app for this project's bundle: serve it, fine-tune it from the datastore's labels, and choose the
next scan to annotate with the hybrid model itself.

Written to an app folder by ``monai-hybrid monailabel-app DIR`` (with the bundle in ``DIR/model/<name>``); run it
with MONAI Label 0.8.5 in its own environment, where ``monai_hybrid`` is installed too:

    python -m monailabel.main start_server --app DIR --studies STUDIES --conf models hybrid_brain_mri_segmentation

* inference: MONAI Label's ``BundleInferTask`` on ``configs/inference.yaml`` and ``models/model.pt``;
* training (the Train button, ``POST /train/<model>``): MONAI Label's ``BundleTrainTask`` on ``configs/train.yaml``,
  the bundle's fine-tuning run: from ``models/pretrain/model_final.pt``, the pretrained hybrid model, on every
  study with a final label; with ``unlabeled_weight`` > 0 it also denoises the studies without one
  (semi-supervised); the new ``models/model.pt`` is served by the next ``/infer/``;
* next scan (``POST /activelearning/<strategy>``): ``random`` and ``first`` (MONAI Label's), and
  ``hybrid_disagreement``: the unlabelled study on which the served model's masks at a few small noise levels
  disagree most (``monai_hybrid.active_learning``).
"""

from __future__ import annotations

import logging
import os

from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "hybrid_brain_mri_segmentation"


class HybridDisagreement(Strategy):
    """The unlabelled study whose masks disagree most across small noise levels (the served model's).

    Args:
        bundle_path: the bundle folder (its ``models/model.pt`` is read at every request: after training, the new
            model ranks the studies).
    """

    def __init__(self, bundle_path: str) -> None:
        super().__init__("Hybrid model: disagreement of the mask head across small noise levels")
        self.bundle_path = bundle_path

    def __call__(self, request, datastore: Datastore):
        from monai_hybrid.active_learning import BundleScorer, rank_by_disagreement

        images = datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels"))
        if not images:
            return None
        scorer = BundleScorer(self.bundle_path, device=request.get("device", "cpu"))
        ranked = rank_by_disagreement(images, lambda i: scorer.load(datastore.get_image_uri(i)), scorer.score)
        logger.info("hybrid_disagreement ranking: %s", ranked)
        image, score = ranked[0]
        return {"id": image, "weight": score}


class HybridTrainTask(BundleTrainTask):
    """MONAI Label's bundle train task with the semi-supervised option: ``unlabeled_weight`` > 0 in the request
    (the Train panel) also denoises the studies that have no final label yet."""

    def config(self):
        return {**super().config(), "unlabeled_weight": 0.0}

    def __call__(self, request, datastore: Datastore):
        weight = float(request.get("unlabeled_weight", 0.0) or 0.0)
        images = datastore.get_unlabeled_images() if weight > 0 else []
        self._unlabeled = (weight, [{"image": datastore.get_image_uri(i)} for i in images])
        return super().__call__(request, datastore)

    def _update_overrides(self, overrides):
        weight, unlabeled = getattr(self, "_unlabeled", (0.0, []))
        if weight > 0 and unlabeled:
            overrides["unlabeled_weight"] = weight
            overrides["unlabeled#dataset#data"] = unlabeled
            logger.info("Semi-supervised fine-tuning: %d unlabelled studies, weight %s", len(unlabeled), weight)
        return overrides


class HybridApp(MONAILabelApp):
    def __init__(self, app_dir: str, studies: str, conf: dict) -> None:
        names = [m.strip() for m in conf.get("models", DEFAULT_MODEL).split(",") if m.strip()]
        self.bundles = {name: os.path.join(app_dir, "model", name) for name in names}
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-hybrid",
            description="Hybrid diffusion pretrained segmentation: serve, fine-tune on a few labelled scans, choose "
            "the next scan",
            version="0.2.0",
        )

    def init_infers(self):
        infers = {}
        for name, path in self.bundles.items():
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
        return {"random": Random(), "first": First(), "hybrid_disagreement": HybridDisagreement(first)}
