"""What the MONAI Label checks share: a MONAI Label 0.8.5 server started on 127.0.0.1 from its own environment,
requests to it, and stopping it with its log shown on failure.

    from server import finish, free_port, logger, request, run_check, start_server, wait_ready
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

MODEL = "hybrid_brain_mri_segmentation"


def logger(name: str) -> Callable[[str], None]:
    """A function that prints ``[name] message`` at once (the checks run for minutes)."""

    def log(msg: str) -> None:
        sys.stdout.write(f"[{name}] {msg}\n")
        sys.stdout.flush()

    return log


def monailabel_python(given: str, log: Callable[[str], None]) -> str | None:
    """The absolute path of MONAI Label's Python (the server runs in another folder), or None, said in the log, when
    it does not exist yet."""
    python = os.path.abspath(given)
    if not Path(python).exists():
        log(f"{python} not found; run experiments/monailabel/setup_env.sh first")
        return None
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(python: str, work: Path, app: Path, port: int, conf: dict | None = None) -> subprocess.Popen:
    """MONAI Label's server on ``app`` with the studies in ``work/studies``, logging to ``work/server.log``;
    ``conf``: ``--conf`` pairs (``models`` defaults to this project's bundle)."""
    env = {**os.environ, "MONAI_LABEL_SESSION_PATH": str(work / "sessions"), "PYTHONNOUSERSITE": "1"}
    cmd = [python, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(work / "studies")]
    for key, value in {"models": MODEL, **(conf or {})}.items():
        cmd += ["--conf", key, str(value)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = open(work / "server.log", "a")
    return subprocess.Popen(cmd, cwd=str(work), env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 180) -> dict:
    """``/info/`` of the server once it answers."""
    start = time.time()
    while time.time() - start < timeout:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/info/", timeout=5) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(1)
    raise TimeoutError(f"no answer from {url}/info/ in {timeout} s")


def request(url: str, method: str = "POST", body: bytes = b"", headers: dict | None = None, timeout=1800) -> bytes:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def dice(a: np.ndarray, b: np.ndarray, k: int) -> float:
    pa, pb = a == k, b == k
    return float(2 * np.logical_and(pa, pb).sum() / max(pa.sum() + pb.sum(), 1))


def report_failure(err: Exception, work: Path, log: Callable[[str], None]) -> int:
    """Say what failed and show the server's traceback (its log, the app's log); returns the exit code 1."""
    log(f"FAILED: {type(err).__name__}: {err}")
    for path in (work / "server.log", work / "app" / "logs" / "app.log"):
        if path.exists():
            text = path.read_text()
            start = text.find("Traceback")
            sys.stdout.write(f"--- {path}\n" + (text[start : start + 6000] if start >= 0 else text[-3000:]))
    return 1


def finish(server: subprocess.Popen | None, work: Path, keep: bool, log: Callable[[str], None]) -> None:
    """Stop the server by its process id (SIGTERM, then SIGKILL after 30 s) and remove the work folder."""
    if server is not None and server.poll() is None:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
        log(f"server {server.pid} stopped")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)


def run_check(body, work: Path, keep: bool, log: Callable[[str], None]) -> int:
    """Run a check: ``body(state)`` does it (and puts the server it starts in ``state["server"]``); then say PASSED
    (exit code 0) or FAILED with the server's traceback (1), stop the server and remove the work folder."""
    state: dict = {"server": None}
    try:
        body(state)
        log("PASSED")
        return 0
    except Exception as err:
        return report_failure(err, work, log)
    finally:
        finish(state["server"], work, keep, log)
