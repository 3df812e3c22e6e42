"""A real MLflow tracking server on 127.0.0.1 in front of a local store, for as long as a block runs.

Used where a run's steps cannot open the embedded sqlite store themselves: `matta run --runner docker` runs each
step in a container as the image's own user, which must not write the caller's database file. The steps talk to
this server over HTTP instead (the same way they talk to the MLflow server on a cluster), and artifacts are
proxied through it. The slim settings from the platform notes (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``,
``--workers 1``): ~0.6 GB and ~5 s to start instead of 3.4 GB and 10 s. The production-like stack
(`production_stack`) starts the same server on PostgreSQL with ``gs://`` artifacts on the GCS emulator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from matta_core.processes import stop_process_group
from matta_core.tracking.errors import TrackingError

STARTUP_TIMEOUT_S = 60.0
START_ATTEMPTS = 3


@dataclass
class LocalServer:
    """A running server: ``uri`` is its tracking URI (``http://127.0.0.1:<port>``)."""

    uri: str
    process: subprocess.Popen[bytes]
    backend_store_uri: str
    artifacts_dir: Path | str  # a folder, or gs://bucket/path
    log_path: Path


def mlflow_executable() -> str:
    """The ``mlflow`` command beside the running interpreter (a venv's bin folder), else the one on PATH."""
    beside = Path(sys.executable).parent / "mlflow"
    found = str(beside) if beside.exists() else shutil.which("mlflow")
    if found is None:
        raise TrackingError("the mlflow command was not found: install mlflow==3.17.2 (the full package, which has "
                            "the server; mlflow-skinny has none)")
    return found


def start_server(
    backend_store_uri: str, artifacts_dir: Path | str, log_path: Path, *, cwd: Path | None = None,
    port: int | None = None, env: Mapping[str, str] | None = None, startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> LocalServer:
    """Start ``mlflow server`` on a loopback port and wait for ``/health``.

    `artifacts_dir` is a folder or a ``gs://bucket/path`` (with ``STORAGE_EMULATOR_HOST`` in `env` for the GCS
    emulator); `env` is added to this process's environment. With `port` unset a free port is picked, and a new one
    is tried if the server exits at once (another process took the port in between); a `port` in use is refused.
    A server that does not answer within `startup_timeout_s` is stopped and reported with its log's last lines.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if port is not None:
        ensure_port_free(port, "the MLflow server")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    env.pop("MLFLOW_TRACKING_URI", None)  # the server is the store; a client setting must not leak into it
    for _ in range(START_ATTEMPTS if port is None else 1):
        chosen = port or free_port()
        uri = f"http://127.0.0.1:{chosen}"
        command = [mlflow_executable(), "server", "--backend-store-uri", backend_store_uri,
                   "--artifacts-destination", str(artifacts_dir), "--host", "127.0.0.1", "--port", str(chosen),
                   "--workers", "1"]
        # Output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server. A new session
        # makes the server's workers one process group, so stop_server ends them all and nothing else.
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd or log_path.parent,
                                       env=env, start_new_session=True)
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            if healthy(uri):
                return LocalServer(uri, process, backend_store_uri, artifacts_dir, log_path)
            time.sleep(0.1)
        timed_out = process.poll() is None
        stop_server(process)
        if timed_out:  # a slow server stays slow on another port: no retry
            raise TrackingError(f"mlflow server at {uri} did not answer /health within {startup_timeout_s:g} s "
                                f"and was stopped; the last lines of its log ({log_path}):\n{log_tail(log_path)}")
    raise TrackingError(f"mlflow server did not start after {START_ATTEMPTS if port is None else 1} tries; the "
                        f"last lines of its log ({log_path}):\n{log_tail(log_path)}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and the worker processes it started (its own process group)."""
    stop_process_group(process)


@contextlib.contextmanager
def serving(backend_store_uri: str, artifacts_dir: Path, log_path: Path) -> Iterator[LocalServer]:
    """A server for the duration of the block."""
    server = start_server(backend_store_uri, artifacts_dir, log_path)
    try:
        yield server
    finally:
        stop_server(server.process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something already listens on (or holds) `host`:`port`."""
    with socket.socket() as s:
        # SO_REUSEADDR as servers set it: a port left in TIME_WAIT by a stopped server counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def ensure_port_free(port: int, what: str) -> None:
    """Refuse a port another process holds, before anything is started (that process is left alone)."""
    if port_in_use(port):
        raise TrackingError(f"port {port} on 127.0.0.1 is already in use, so {what} cannot listen there: stop "
                            f"whatever holds it, choose another port, or leave the port out to pick a free one")


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file (or a note that there is none), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"


def healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
