"""A real GCS emulator for tests: the ``gcs_emulator`` session fixture.

Starts ``gcp-storage-emulator`` (the HTTP server from the dev extras, not a mock) on a free port with in-memory
storage, points ``STORAGE_EMULATOR_HOST`` at it for the whole session, and stops it at the end.

Register it from a ``conftest.py``::

    from tests.gcs_emulator import gcs_emulator  # noqa: F401

then use ``gcs_emulator.make_bucket("name")`` to get a ``gs://name`` root. The emulator ignores generation
preconditions (``if_generation_match``), so create-only behaviour must be tested through the storage layer.
"""

from __future__ import annotations

import json
import shutil
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

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
_STARTUP_TIMEOUT_S = 20.0
_START_ATTEMPTS = 3


@dataclass
class GCSEmulator:
    """A running emulator: ``host`` is its base URL, as put in ``STORAGE_EMULATOR_HOST``."""

    host: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (an existing one is fine) and return its ``gs://name`` root URI."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(
            f"{self.host}/storage/v1/b?project=test",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409 Conflict: the bucket already exists, which is what we want
                raise
        return f"gs://{name}"


def _emulator_executable() -> str:
    # Prefer the copy beside the running interpreter (.venv/bin) over whatever PATH happens to hold.
    beside = Path(sys.executable).parent / "gcp-storage-emulator"
    found = str(beside) if beside.exists() else shutil.which("gcp-storage-emulator")
    if found is None:
        raise RuntimeError("gcp-storage-emulator not found; install the dev extras: pip install -e '.[dev]'")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"{host}/storage/v1/b?project=test", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def start_emulator(log_path: Path) -> GCSEmulator:
    """Start an emulator and wait until it answers; retries on a new port if the chosen one was taken."""
    executable = _emulator_executable()
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        host = f"http://127.0.0.1:{port}"
        # Output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [executable, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory", "--quiet"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(host):
                return GCSEmulator(host=host, process=process, log_path=log_path)
            time.sleep(0.05)
        if process.poll() is None:
            _stop(process)
    log_tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"gcp-storage-emulator did not start after {_START_ATTEMPTS} tries; log:\n{log_tail}")


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSEmulator]:
    """A running GCS emulator for the whole session, with ``STORAGE_EMULATOR_HOST`` pointing at it."""
    emulator = start_emulator(tmp_path_factory.mktemp("gcs-emulator") / "emulator.log")
    # MonkeyPatch.context: the session-scoped twin of the monkeypatch fixture; restores the env on exit.
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(EMULATOR_ENV, emulator.host)
            yield emulator
    finally:
        _stop(emulator.process)
