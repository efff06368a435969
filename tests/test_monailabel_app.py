"""The MONAI Label app (monai_hybrid/monailabel_app/main.py) without a server.

MONAI Label is not installed beside this project (it has its own environment, experiments/monailabel/setup_env.sh):
here the app is loaded over small stand-ins of the MONAI Label base classes it subclasses, and its own logic is
tested: the stored scores the next-scan strategy reads, the scoring that writes them, the label/image shape check
of a train request, the unknown image id of an infer request. The tests marked ``monailabel`` run only where MONAI
Label 0.8.5 is importable (``.monailabel-venv/bin/python -m pytest tests/test_monailabel_app.py``): they check the
app's assumptions on MONAI Label's own code, and the app loaded over them.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time
import types
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

MAIN = Path(__file__).resolve().parents[1] / "monai_hybrid" / "monailabel_app" / "main.py"
HAS_MONAILABEL = importlib.util.find_spec("monailabel") is not None
needs_monailabel = pytest.mark.skipif(not HAS_MONAILABEL, reason="MONAI Label is not installed in this environment")


class _Base:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _StubTrainTask(_Base):
    """What the app relies on in MONAI Label's BundleTrainTask: ``__call__`` reads the labelled studies through
    ``datastore.datalist()`` and calls ``run_single_gpu(request, overrides)`` with the request it was given, which
    runs ``bundle_config_path`` (recorded here as the third item of each call)."""

    calls: list = []

    def __init__(self, path, conf):
        self.bundle_path = path
        self.bundle_config_path = f"{path}/configs/train.yaml"

    def config(self):
        return {"max_epochs": 50, "multi_gpu": True}

    def __call__(self, request, datastore):
        data = [{"image": d["image"], "label": d["label"]} for d in datastore.datalist() if d]
        self.run_single_gpu(request, {"train#dataset#data": data})
        return {}

    def run_single_gpu(self, request, overrides):
        _StubTrainTask.calls.append((request, overrides, self.bundle_config_path))


class _StubApp(_Base):
    def infer(self, request, datastore=None):
        return {"ran": request}


class _StubHTTPException(Exception):
    def __init__(self, status_code, detail=None):
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


def _stub_modules() -> dict[str, types.ModuleType]:
    classes = {
        "monailabel.interfaces.app": {"MONAILabelApp": _StubApp},
        "monailabel.interfaces.datastore": {"Datastore": object},
        "monailabel.interfaces.tasks.scoring": {"ScoringMethod": _Base},
        "monailabel.interfaces.tasks.strategy": {"Strategy": _Base},
        "monailabel.tasks.activelearning.first": {"First": _Base},
        "monailabel.tasks.activelearning.random": {"Random": _Base},
        "monailabel.tasks.infer.bundle": {"BundleInferTask": _Base},
        "monailabel.tasks.train.bundle": {"BundleTrainTask": _StubTrainTask},
    }
    if importlib.util.find_spec("fastapi") is None:
        classes["fastapi"] = {"HTTPException": _StubHTTPException}
    modules = {}
    for name, members in classes.items():
        module = types.ModuleType(name)
        module.__dict__.update(members)
        modules[name] = module
    return modules


def _load_main(name: str):
    spec = importlib.util.spec_from_file_location(name, MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app_main(monkeypatch):
    """main.py loaded over the stand-ins of MONAI Label's classes (also where MONAI Label is installed)."""
    for name, module in _stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    _StubTrainTask.calls = []
    return _load_main("monailabel_app_main_over_stubs")


@pytest.fixture
def real_app_main():
    """main.py as MONAI Label loads it, over MONAI Label's own classes."""
    return _load_main("monailabel_app_main_over_monailabel")


class FakeDatastore:
    """The part of MONAI Label's LocalDatastore the app uses: ids -> files, final labels, image info."""

    def __init__(self, images: dict[str, str], labels: dict[str, str] | None = None) -> None:
        self.images, self.labels = images, labels or {}
        self.info: dict[str, dict] = {i: {} for i in images}

    def datalist(self, full_path=True):
        return [{"image": self.images[i], "label": label} for i, label in self.labels.items()]

    def get_unlabeled_images(self, label_tag=None, labels=None):
        return [i for i in self.images if i not in self.labels]

    def get_image_uri(self, image_id):
        return self.images.get(image_id, "")

    def get_image_info(self, image_id):
        return {**self.info.get(image_id, {}), "path": self.images.get(image_id, "")}

    def update_image_info(self, image_id, info):
        self.info[image_id].update(info)


def _nifti(path: Path, shape) -> str:
    nib.save(nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), np.eye(4)), str(path))
    return str(path)


# --- the next scan, from stored scores ---------------------------------------------------------------------------


def test_choose_from_scores_prefers_the_served_models_scores(app_main):
    key = app_main.SCORE_INFO_KEY
    infos = {
        "a": {key: {"score": 0.9, "model": "old"}},
        "b": {key: {"score": 0.2, "model": "new"}},
        "c": {key: {"score": 0.5, "model": "new"}},
        "d": {},
    }
    expected = {"id": "c", "weight": 0.5, "source": "score of the served model"}
    assert app_main.choose_from_scores(infos, "new") == expected


def test_choose_from_scores_falls_back_to_earlier_scores_then_to_a_logged_random_choice(app_main, caplog):
    key = app_main.SCORE_INFO_KEY
    earlier = app_main.choose_from_scores({"a": {key: {"score": 0.1, "model": "old"}}, "b": {}}, "new")
    assert earlier["id"] == "a" and "earlier model" in earlier["source"]
    choice = app_main.choose_from_scores({"a": {}, "b": {}}, "new", rng=random.Random(0))
    assert choice["id"] in ("a", "b") and choice["weight"] == 0.0 and choice["source"] == "random: no score yet"
    assert "no study has a score yet" in caplog.text and f"POST /scoring/{app_main.STRATEGY}" in caplog.text
    assert app_main.choose_from_scores({}, "new") == {}


def test_strategy_answers_from_the_datastore_without_inference(app_main, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "models" / "model.pt").write_bytes(b"weights")
    stamp = app_main.model_stamp(str(bundle / "models" / "model.pt"))
    store = FakeDatastore({f"s{i}": f"/nowhere/s{i}.nii.gz" for i in range(200)}, labels={"s0": "/nowhere/l0"})
    for i in range(1, 200):
        store.info[f"s{i}"][app_main.SCORE_INFO_KEY] = {"score": i / 1000, "model": stamp}
    strategy = app_main.HybridDisagreement(str(bundle))
    start = time.perf_counter()
    choice = strategy({"strategy": app_main.STRATEGY}, store)
    assert time.perf_counter() - start < 1.0
    assert choice["id"] == "s199" and choice["weight"] == pytest.approx(0.199)
    assert strategy({}, FakeDatastore({"s0": "x"}, labels={"s0": "l"})) is None  # nothing left to annotate


def test_model_stamp_changes_when_the_model_is_replaced(app_main, tmp_path):
    model = tmp_path / "model.pt"
    assert app_main.model_stamp(str(model)) == ""
    model.write_bytes(b"a")
    first = app_main.model_stamp(str(model))
    model.write_bytes(b"bb")
    assert app_main.model_stamp(str(model)) not in ("", first)


# --- the scoring method ------------------------------------------------------------------------------------------


class _FakeScorer:
    loaded: list = []

    def __init__(self, bundle_dir, device="cpu"):
        self.device = device

    def load(self, path):
        _FakeScorer.loaded.append(path)
        return path

    def score(self, image):
        return float(len(image))


def test_scoring_stores_a_score_per_unlabelled_study_and_skips_the_current_ones(app_main, tmp_path, monkeypatch):
    import monai_hybrid.active_learning as al

    monkeypatch.setattr(al, "BundleScorer", _FakeScorer)
    _FakeScorer.loaded = []
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "models" / "model.pt").write_bytes(b"weights")
    store = FakeDatastore({"a": "/s/a.nii.gz", "bb": "/s/bb.nii.gz", "c": "/s/c.nii.gz"}, labels={"c": "/l/c"})
    scoring = app_main.HybridDisagreementScoring(str(bundle))
    summary = scoring({"method": app_main.STRATEGY, "device": "cpu"}, store)
    assert summary["scored"] == 2 and summary["skipped"] == 0 and summary["seconds_per_study"] >= 0
    stored = store.info["bb"][app_main.SCORE_INFO_KEY]
    assert stored["score"] == len("/s/bb.nii.gz") and stored["model"] == summary["model"] and "seconds" in stored
    assert app_main.SCORE_INFO_KEY not in store.info["c"]  # labelled: not scored
    assert scoring({}, store)["scored"] == 0  # nothing new with the same model (MONAI Label reruns it often)
    (bundle / "models" / "model.pt").write_bytes(b"fine-tuned weights")  # Train replaced the model
    assert scoring({}, store)["scored"] == 2
    assert len(_FakeScorer.loaded) == 4
    assert app_main.HybridDisagreement(str(bundle))({}, store)["id"] == "bb"


def test_app_registers_the_scoring_method_beside_the_strategy(app_main, tmp_path):
    app = app_main.HybridApp.__new__(app_main.HybridApp)
    app.bundles = {"m": str(tmp_path)}
    assert set(app.init_scoring_methods()) == {app_main.STRATEGY}
    assert app_main.STRATEGY in app.init_strategies()


@pytest.mark.parametrize("conf, expected", [({}, 1), ({"threads": "auto"}, 1), ({"threads": "2"}, 2)])
def test_every_app_process_takes_its_share_of_the_cores_at_start(app_main, tmp_path, monkeypatch, conf, expected):
    """MONAI Label's server, Train and scoring processes each build the app: on 2 cores each takes 1 thread unless
    ``--conf threads`` says otherwise."""
    import torch

    from monai_hybrid import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    before = torch.get_num_threads()
    try:
        app_main.HybridApp(str(tmp_path), str(tmp_path), {"models": "m", **conf})
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


# --- bad requests ------------------------------------------------------------------------------------------------


def test_unknown_image_id_is_a_404_naming_it_before_inference(app_main, tmp_path):
    store = FakeDatastore({"known": _nifti(tmp_path / "known.nii.gz", (4, 4, 4))})
    app = app_main.HybridApp.__new__(app_main.HybridApp)
    with pytest.raises(Exception) as raised:
        app.infer({"model": "m", "image": "nobody"}, store)
    assert raised.value.status_code == 404 and "'nobody'" in raised.value.detail
    app_main.check_image_known("known", store)  # a datastore id
    app_main.check_image_known(str(tmp_path / "known.nii.gz"), store)  # an uploaded file's path
    app_main.check_image_known(None, store)  # a session's image: MONAI Label's business


def test_mismatched_labels_names_each_label_and_its_shapes(app_main, tmp_path):
    image = _nifti(tmp_path / "i.nii.gz", (8, 8, 4))
    good = _nifti(tmp_path / "good.nii.gz", (8, 8, 4, 1))  # a trailing channel axis is the same grid
    bad = _nifti(tmp_path / "bad.nii.gz", (8, 6, 4))
    problems = app_main.mismatched_labels([{"image": image, "label": good}, {"image": image, "label": bad}])
    assert list(problems) == [bad]
    assert "(8, 6, 4)" in problems[bad] and "(8, 8, 4)" in problems[bad] and "i.nii.gz" in problems[bad]


def _shape_store(tmp_path, bad_ids=("b",), ids=("a", "b", "c"), unlabelled=("u",)):
    images = {i: _nifti(tmp_path / f"{i}.nii.gz", (8, 8, 4)) for i in (*ids, *unlabelled)}
    labels = {i: _nifti(tmp_path / f"{i}_label.nii.gz", (8, 7, 4) if i in bad_ids else (8, 8, 4)) for i in ids}
    return FakeDatastore(images, labels)


def test_train_request_leaves_out_mismatched_labels_and_keeps_its_state_in_the_request(app_main, tmp_path, caplog):
    store = _shape_store(tmp_path)
    task = app_main.HybridTrainTask(str(tmp_path), {})
    state = dict(vars(task))
    request = {"model": "m", "unlabeled_weight": 0.5}
    task(request, store)
    sent_request, overrides, config_file = _StubTrainTask.calls[-1]
    assert [d["label"] for d in overrides["train#dataset#data"]] == [store.labels["a"], store.labels["c"]]
    assert overrides["unlabeled_weight"] == 0.5
    assert overrides["unlabeled#dataset#data"] == [{"image": store.images["u"]}]
    assert config_file == [f"{tmp_path}/configs/train.yaml", str(tmp_path / "configs" / "unlabeled.yaml")]
    assert sent_request["multi_gpu"] is False
    assert request == {"model": "m", "unlabeled_weight": 0.5}  # the caller's request is untouched
    assert vars(task) == state  # nothing of the request kept on the shared task object
    assert "b_label.nii.gz (shape (8, 7, 4)) does not match" in caplog.text


def test_train_requests_do_not_share_state(app_main, tmp_path):
    store = _shape_store(tmp_path, bad_ids=())
    task = app_main.HybridTrainTask(str(tmp_path), {})
    task({"model": "m", "unlabeled_weight": 0.5}, store)
    task({"model": "m"}, store)  # the next request, without the option, on the same task object
    assert "unlabeled#dataset#data" in _StubTrainTask.calls[0][1]
    assert "unlabeled#dataset#data" not in _StubTrainTask.calls[1][1]
    # the overlay is composed for the semi-supervised request only; the task keeps train.yaml alone
    assert _StubTrainTask.calls[0][2][-1].endswith("unlabeled.yaml")
    assert _StubTrainTask.calls[1][2] == task.bundle_config_path == f"{tmp_path}/configs/train.yaml"


def test_a_train_request_without_unlabelled_studies_runs_train_yaml_alone(app_main, tmp_path):
    store = _shape_store(tmp_path, bad_ids=(), unlabelled=())
    task = app_main.HybridTrainTask(str(tmp_path), {})
    task({"model": "m", "unlabeled_weight": 0.5}, store)  # the option on, but every study has a label
    _, overrides, config_file = _StubTrainTask.calls[-1]
    assert config_file == task.bundle_config_path and "unlabeled_weight" not in overrides


def test_train_request_refuses_with_the_list_when_no_label_matches(app_main, tmp_path):
    store = _shape_store(tmp_path, bad_ids=("a", "b"), ids=("a", "b"))
    with pytest.raises(ValueError, match="no labelled study left") as raised:
        app_main.HybridTrainTask(str(tmp_path), {})({"model": "m"}, store)
    assert "a_label.nii.gz" in str(raised.value) and "b_label.nii.gz" in str(raised.value)
    assert not _StubTrainTask.calls


def _class_bundle(tmp_path, app: list[str], served: list[str]) -> Path:
    import json

    from monai_hybrid.bundle import configure_app_training, write_bundle

    bundle = write_bundle(tmp_path / "bundle")
    configure_app_training(bundle, app)
    (bundle / "models" / "model_settings.json").write_text(json.dumps({"class_names": served}))
    return bundle


TISSUES = ["background", "csf", "grey_matter", "white_matter"]


def test_the_app_refuses_to_start_when_its_labels_are_not_the_served_models(app_main, tmp_path):
    """MONAI Label builds the inference network once, for the served model: an app that labels a class the served
    model has no channel for would break at the first /infer/ after a Train. It refuses at start, naming the fix."""
    bundle = _class_bundle(tmp_path, TISSUES + ["lesion"], TISSUES)
    with pytest.raises(RuntimeError, match="labels .*'lesion'.* but the served model labels") as raised:
        app_main.check_served_classes(str(bundle))
    assert "monai-hybrid monailabel-app APP --models MODELS --class-names background csf" in str(raised.value)
    app_main.check_served_classes(str(_class_bundle(tmp_path / "same", TISSUES, TISSUES)))  # no error


# --- the app's assumptions on MONAI Label 0.8.5's own code -------------------------------------------------------


@needs_monailabel
def test_monailabel_train_task_calls_run_single_gpu_with_our_request_and_the_datastore_datalist(
    real_app_main, tmp_path, monkeypatch
):
    """BundleTrainTask.__call__ reads the labelled studies via datastore.datalist() and hands the request it got and
    the overrides to the public run_single_gpu (the app's only hooks); run_single_gpu runs monai.bundle.run."""
    import monai.bundle

    from monai_hybrid.bundle import write_bundle

    bundle = write_bundle(tmp_path / "model" / "hybrid_brain_mri_segmentation")
    runs = []
    monkeypatch.setattr(monai.bundle, "run", lambda **kwargs: runs.append(kwargs))
    store = _shape_store(tmp_path)
    task = real_app_main.HybridTrainTask(str(bundle), {})
    task({"model": "hybrid_brain_mri_segmentation", "unlabeled_weight": 0.5, "val_split": 0.0, "device": "cpu"}, store)
    task({"model": "hybrid_brain_mri_segmentation", "val_split": 0.0, "device": "cpu"}, store)
    semi, plain = runs
    assert [d["label"] for d in semi["train#dataset#data"]] == [store.labels["a"], store.labels["c"]]
    assert semi["unlabeled#dataset#data"] == [{"image": store.images["u"]}] and semi["unlabeled_weight"] == 0.5
    # the semi-supervised request composes the unlabeled overlay on train.yaml; the next request runs train.yaml
    assert semi["config_file"] == [str(bundle / "configs" / "train.yaml"), str(bundle / "configs" / "unlabeled.yaml")]
    assert plain["config_file"] == task.bundle_config_path == str(bundle / "configs" / "train.yaml")
    assert "unlabeled#dataset#data" not in plain and "unlabeled_weight" not in plain
    assert not hasattr(task, "_unlabeled")


@needs_monailabel
def test_monailabel_runs_scoring_after_train_and_at_start_up():
    """MONAI Label 0.8.5 reruns every scoring method after a Train, after a next-scan request and at start-up when
    auto_update_scoring is on (its default): the app relies on it to refresh the stored scores."""
    import inspect

    from monailabel.config import settings
    from monailabel.interfaces.app import MONAILabelApp

    assert settings.MONAI_LABEL_AUTO_UPDATE_SCORING is True
    for method in (MONAILabelApp.train, MONAILabelApp.next_sample, MONAILabelApp.on_init_complete):
        assert "self.async_scoring(None)" in inspect.getsource(method)


@needs_monailabel
def test_monailabel_classes_accept_the_apps_subclasses_and_fastapi_answers_404(real_app_main, tmp_path):
    """The scoring method and the strategy instantiate over MONAI Label's abstract classes; the unknown-id error is
    FastAPI's HTTPException, which MONAI Label's endpoints let through as its status."""
    from fastapi import HTTPException
    from monailabel.interfaces.tasks.scoring import ScoringMethod
    from monailabel.interfaces.tasks.strategy import Strategy

    assert isinstance(real_app_main.HybridDisagreementScoring(str(tmp_path)), ScoringMethod)
    assert isinstance(real_app_main.HybridDisagreement(str(tmp_path)), Strategy)
    app = real_app_main.HybridApp.__new__(real_app_main.HybridApp)
    with pytest.raises(HTTPException) as raised:
        app.infer({"model": "m", "image": "nobody"}, FakeDatastore({}))
    assert raised.value.status_code == 404 and "'nobody'" in raised.value.detail
