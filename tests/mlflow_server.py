"""A real MLflow tracking server for tests: the ``mlflow_server`` session fixture.

Starts ``mlflow server`` (from the interpreter's own bin folder) with a sqlite backend store and a local
``--artifacts-destination`` (artifacts are proxied through the server, as in production), on a free 127.0.0.1
port, with the slim settings from the platform notes (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``,
``--workers 1``: ~0.6 GB and ~5 s instead of 3.4 GB and 10 s). One server per test session; stopped at the end.

Register it from a ``conftest.py``::

    from tests.mlflow_server import mlflow_server  # noqa: F401

and use ``mlflow_server.uri`` (``http://127.0.0.1:<port>``) as a tracking URI.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_STARTUP_TIMEOUT_S = 60.0
_START_ATTEMPTS = 3


@dataclass
class MLflowServer:
    """A running server: ``uri`` is its tracking URI; its state lives under ``root``."""

    uri: str
    process: subprocess.Popen[bytes]
    root: Path
    log_path: Path

    @property
    def backend_store_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"


def _mlflow_executable() -> str:
    # Prefer the copy beside the running interpreter (.venv/bin) over whatever PATH happens to hold.
    beside = Path(sys.executable).parent / "mlflow"
    found = str(beside) if beside.exists() else shutil.which("mlflow")
    if found is None:
        raise RuntimeError("the mlflow CLI was not found; install mlflow==3.17.2 (the full package, not skinny)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and the worker processes it started (its own process group)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def start_server(root: Path) -> MLflowServer:
    """Start a server with its state under `root` and wait until ``/health`` answers; retry on a new port."""
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the server is the store; a client setting must not leak into it
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        uri = f"http://127.0.0.1:{port}"
        command = [
            _mlflow_executable(), "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]
        # Output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server. A new session
        # makes the server's workers one process group, so stop_server ends them all and nothing else.
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env,
                                       start_new_session=True)
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _healthy(uri):
                return MLflowServer(uri=uri, process=process, root=root, log_path=log_path)
            time.sleep(0.1)
        stop_server(process)
    log_tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"mlflow server did not start after {_START_ATTEMPTS} tries; log:\n{log_tail}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLflowServer]:
    """A running MLflow tracking server for the whole session (sqlite backend, proxied local artifacts)."""
    server = start_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        stop_server(server.process)


@pytest.fixture(autouse=True)
def clean_mlflow_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No tracking URI from the caller's environment in, no active run or global URI out.

    Autouse where a conftest imports it. Tests run in their tmp folder: a store MLflow opens by default
    (``./mlflow.db``) never lands in the repo.
    """
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
