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

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from matta_core.tracking.local_server import healthy, stop_server  # noqa: F401
from matta_core.tracking.local_server import start_server as _start


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


def start_server(root: Path) -> MLflowServer:
    """Start a server with its state under `root` and wait until ``/health`` answers (the library's server)."""
    root.mkdir(parents=True, exist_ok=True)
    server = _start(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", root / "server.log", cwd=root)
    return MLflowServer(uri=server.uri, process=server.process, root=root, log_path=server.log_path)


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
