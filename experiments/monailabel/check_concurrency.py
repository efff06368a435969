"""A Train, the background scoring and four concurrent inferences together in a real MONAI Label 0.8.5 server, each
timed against the same job alone, with every process taking all the cores and with the app's thread share.

MONAI Label runs a Train and the scoring as processes of their own beside the server, which answers inferences in
its thread pool. Each process builds the app, which sizes its PyTorch threads (``--conf threads``: ``auto``, the
cores divided among the three, is the app's default; a number sets it). For each setting given by ``--threads``:

1. starts the server with ``--conf threads <setting>``, waits for the start-up scoring of the unlabelled studies and
   sends one inference (the server builds the network at its first);
2. alone: four ``/infer/`` requests at once (the latency of each; MONAI Label 0.8.5 runs inferences one at a time on
   its event loop, so the four queue); a Train (``POST /train/<model>``, in the
   background as the Train button runs it, polled until done); the scoring MONAI Label runs after it (seconds per
   study, as the scoring stores them);
3. together: the served model is touched (so every study needs scoring again), then a Train and a scoring
   (``POST /scoring/hybrid_disagreement``) start at once and, once both processes are computing (``--delay``), four
   ``/infer/`` requests at once;
4. prints each job's time together / alone, and stops the server.

The served model and the phantom are those of ``check_loop.py`` (a small hybrid pretraining on the 3 mm phantom,
or ``--pretrained``).

    bash experiments/monailabel/setup_env.sh                       # once: .monailabel-venv
    python experiments/monailabel/check_concurrency.py --monailabel-python .monailabel-venv/bin/python \\
        --threads 2 auto

Run from this project's own environment. Exit code 0 when every job finished; the aim (no job more than 2x its time
alone with the app's default) is reported, not asserted: it is a measurement on a shared machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_loop import pretrain, save_label, site_settings, write_app  # noqa: E402
from server import MODEL, finish, free_port, logger, monailabel_python, request, start_server, wait_ready  # noqa: E402

from monai_hybrid.checkpoint_io import model_stamp  # noqa: E402

STRATEGY = "hybrid_disagreement"
_log = logger("check_concurrency")


def _post(url: str, path: str, params: dict | None = None) -> dict:
    body = json.dumps(params or {}).encode()
    return json.loads(request(f"{url}{path}", body=body, headers={"Content-Type": "application/json"}) or b"{}")


def infer_together(url: str, ids: list[str]) -> list[float]:
    """Seconds of each of ``len(ids)`` ``/infer/`` requests sent at once."""

    def one(image_id: str) -> float:
        start = time.perf_counter()
        request(f"{url}/infer/{MODEL}?image={image_id}&output=image")
        return time.perf_counter() - start

    with concurrent.futures.ThreadPoolExecutor(len(ids)) as pool:
        return list(pool.map(one, ids))


def last_task(url: str, method: str) -> dict:
    """The latest background task of ``method`` (train or scoring) as MONAI Label reports it."""
    answer = json.loads(request(f"{url}/{method}/", "GET"))
    return answer if isinstance(answer, dict) else {}


def wait_task(url: str, method: str, task_id: str, timeout: float = 3600) -> None:
    """Poll until the background task ``task_id`` of ``method`` is no longer running; raise if it failed."""
    start = time.time()
    while time.time() - start < timeout:
        task = last_task(url, method)
        if task.get("id") == task_id and task.get("status") not in ("SUBMITTED", "RUNNING"):
            if task.get("status") != "DONE":
                raise RuntimeError(f"the {method} task ended {task.get('status')}: {str(task)[:500]}")
            return
        time.sleep(1)
    raise TimeoutError(f"the {method} task {task_id} did not finish in {timeout} s")


def wait_idle(url: str, method: str, timeout: float = 3600) -> None:
    """Poll until no background task of ``method`` runs (MONAI Label answers 404 to ``check_if_running`` then)."""
    import urllib.error

    start = time.time()
    while time.time() - start < timeout:
        try:
            request(f"{url}/{method}/?check_if_running=true", "GET")
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return
            raise
        time.sleep(1)
    raise TimeoutError(f"a {method} task still runs after {timeout} s")


def run_train(url: str, epochs: int) -> float:
    """Seconds of a Train started as the Train button does (a background task), until it is done."""
    start = time.perf_counter()
    task = _post(url, f"/train/{MODEL}", {"max_epochs": epochs, "val_split": 0.0, "device": "cpu"})
    wait_task(url, "train", task["id"])
    return time.perf_counter() - start


def scoring_seconds(url: str, ids: list[str], stamp: str, timeout: float = 3600) -> list[float]:
    """The seconds per study the scoring stored for ``ids`` with the model ``stamp``, read as soon as all are there
    (polled every second: a later scoring overwrites them)."""
    start = time.time()
    while time.time() - start < timeout:
        objects = json.loads(request(f"{url}/datastore/?output=all", "GET"))["objects"]
        entries = [objects[i]["image"]["info"].get(STRATEGY) or {} for i in ids]
        if all(e.get("model") == stamp for e in entries):
            return [float(e["seconds"]) for e in entries]
        time.sleep(1)
    raise TimeoutError(f"the scoring did not score {ids} with the model {stamp} in {timeout} s")


def measure(python: str, work: Path, app: Path, threads: str, ids: dict, args) -> dict:
    """Alone and together for one thread setting; the server is stopped at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(python, work, app, port, {"threads": threads})
    try:
        wait_ready(url, server)
        served = app / "model" / MODEL / "models" / "model.pt"
        scoring_seconds(url, ids["unlabelled"], model_stamp(served))  # the start-up scoring, before any timing
        wait_idle(url, "scoring")
        shares = [line for line in (work / "server.log").read_text().splitlines() if "PyTorch thread" in line]
        _log(f"threads {threads}: server ready; {shares[-1].split(' - ')[-1] if shares else 'no thread log line'}")
        infer_together(url, ids["infer"][:1])  # warm-up: the server builds the network at its first inference
        alone = {"infer": infer_together(url, ids["infer"])}
        alone["train"] = run_train(url, args.epochs)
        alone["scoring"] = scoring_seconds(url, ids["unlabelled"], model_stamp(served))  # MONAI Label's, after Train
        wait_idle(url, "scoring")
        _log(f"threads {threads}, alone: {_summary(alone)}")
        os.utime(served)  # a new stamp: every study is scored again
        stamp = model_stamp(served)
        start = time.perf_counter()
        train = _post(url, f"/train/{MODEL}", {"max_epochs": args.epochs, "val_split": 0.0, "device": "cpu"})
        _post(url, f"/scoring/{STRATEGY}")
        time.sleep(args.delay)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            scoring = pool.submit(scoring_seconds, url, ids["unlabelled"], stamp)
            infer = infer_together(url, ids["infer"])
            together = {"infer": infer, "scoring": scoring.result()}
        wait_task(url, "train", train["id"])
        together["train"] = time.perf_counter() - start
        scoring_seconds(url, ids["unlabelled"], model_stamp(served))  # MONAI Label's scoring of the new model
        wait_idle(url, "scoring")
        _log(f"threads {threads}, together: {_summary(together)}")
        return {"threads": threads, "alone": alone, "together": together}
    finally:
        finish(server, work, keep=True, log=_log)


def _summary(times: dict) -> str:
    return (
        f"Train {times['train']:.1f} s; scoring {statistics.fmean(times['scoring']):.2f} s per study; "
        f"inference {statistics.fmean(times['infer']):.2f} s per request (max {max(times['infer']):.2f})"
    )


def report(results: list[dict], cores: int) -> str:
    lines = [
        f"{cores} cores; Train, scoring (seconds per study) and four concurrent inferences (mean seconds per request)",
        "",
        "| threads per process | job | alone (s) | together (s) | together / alone |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for job, name in (("train", "Train"), ("scoring", "scoring, per study"), ("infer", "inference, per request")):
            a, t = r["alone"][job], r["together"][job]
            a, t = (statistics.fmean(a), statistics.fmean(t)) if isinstance(a, list) else (a, t)
            lines.append(f"| {r['threads']} | {name} | {a:.2f} | {t:.2f} | {t / a:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--monailabel-python", default=".monailabel-venv/bin/python")
    p.add_argument("--threads", nargs="+", default=[str(os.cpu_count() or 1), "auto"], help="--conf threads values")
    p.add_argument("--steps", type=int, default=150, help="pretraining steps of the served model")
    p.add_argument("--epochs", type=int, default=4, help="epochs (of 25 steps) of each Train")
    p.add_argument(
        "--delay",
        type=float,
        default=20.0,
        help="seconds between starting Train and scoring and the inferences (the two processes import and load first)",
    )
    p.add_argument("--studies", type=int, default=8, help="FLAIR studies: 2 labelled, 4 inferred, the rest scored")
    p.add_argument("--phantom-dir", default=None, help="3 mm phantom to use or create (default: in the work folder)")
    p.add_argument("--pretrained", default=None, help="a models/pretrain folder to serve instead of pretraining")
    p.add_argument("--out", type=Path, default=None, help="a JSON file for the results")
    args = p.parse_args(argv)
    if args.pretrained and not (Path(args.pretrained) / "model_final.pt").is_file():
        p.error(f"--pretrained: no model_final.pt in '{args.pretrained}'; pass a pretraining run's models/pretrain.")
    python = monailabel_python(args.monailabel_python, _log)
    if python is None:
        return 2
    from monai_hybrid.data import ensure_phantom

    work = Path(tempfile.mkdtemp(prefix="monailabel-concurrency-"))
    phantom = Path(args.phantom_dir) if args.phantom_dir else work / "phantom"
    data = ensure_phantom(phantom, resolution=3.0, progress=False)
    pretrained = Path(args.pretrained) if args.pretrained else pretrain(work, args.steps, data)
    app = write_app(work, pretrained, site_settings(Path(args.pretrained) if args.pretrained else None), None, False)
    site = data / "site_c_flair"
    entries = json.loads((site / "datalist.json").read_text())["training"][: args.studies]
    (work / "studies").mkdir()
    names = [f"flair_{i}" for i in range(len(entries))]
    for name, entry in zip(names, entries, strict=True):
        shutil.copy(site / entry["image"], work / "studies" / f"{name}.nii.gz")
    ids = {"labelled": names[:2], "unlabelled": names[2:], "infer": names[2:6]}
    results = []
    try:
        port = free_port()  # labels are saved once, through a first server
        server = start_server(python, work, app, port)
        try:
            wait_ready(f"http://127.0.0.1:{port}", server)
            for name, entry in zip(ids["labelled"], entries, strict=False):
                save_label(f"http://127.0.0.1:{port}", name, site / entry["label"])
        finally:
            finish(server, work, keep=True, log=_log)
        for threads in args.threads:
            results.append(measure(python, work, app, threads, ids, args))
    except Exception as err:  # noqa: BLE001 - say what failed with the server's log, then exit 1
        _log(f"FAILED: {type(err).__name__}: {err}; server log: {work / 'server.log'}")
        return 1
    table = report(results, os.cpu_count() or 1)
    sys.stdout.write(table + "\n")
    if args.out:
        args.out.write_text(json.dumps({"results": results, "table": table}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
