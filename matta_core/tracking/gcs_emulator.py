"""The GCS emulator (``gcp-storage-emulator``, a real HTTP server, not a mock) on 127.0.0.1: start, stop, buckets.

Used by the production-like stack (`production_stack`) and by the tests' ``gcs_emulator`` fixture. Clients reach
it through ``STORAGE_EMULATOR_HOST=<host>``. It ignores generation preconditions (``if_generation_match``), so
create-only behaviour must be tested through the storage layer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from matta_core.processes import stop_process_group
from matta_core.tracking.errors import TrackingError
from matta_core.tracking.local_server import ensure_port_free, free_port, log_tail

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
STARTUP_TIMEOUT_S = 20.0
START_ATTEMPTS = 3


@dataclass
class GCSEmulator:
    """A running emulator: ``host`` is its base URL, as put in ``STORAGE_EMULATOR_HOST``."""

    host: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (an existing one is fine) and return its ``gs://name`` root URI."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(f"{self.host}/storage/v1/b?project=test", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409 Conflict: the bucket already exists, which is what we want
                raise
        return f"gs://{name}"


def emulator_executable() -> str:
    """``gcp-storage-emulator`` beside the running interpreter (a venv's bin folder), else the one on PATH."""
    beside = Path(sys.executable).parent / "gcp-storage-emulator"
    found = str(beside) if beside.exists() else shutil.which("gcp-storage-emulator")
    if found is None:
        raise TrackingError("gcp-storage-emulator not found; install the local extras: pip install -e '.[local]'")
    return found


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"{host}/storage/v1/b?project=test", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_emulator(log_path: Path, *, data_dir: Path | None = None, port: int | None = None,
                   startup_timeout_s: float = STARTUP_TIMEOUT_S) -> GCSEmulator:
    """Start an emulator and wait until it answers.

    In memory unless `data_dir` is given (then buckets and objects persist there across restarts). With `port`
    unset a free port is picked, and a new one tried if the emulator exits at once; a `port` in use is refused.
    """
    executable = emulator_executable()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if port is not None:
        ensure_port_free(port, "the GCS emulator")
    storage = ["-d", str(data_dir)] if data_dir is not None else []
    for _ in range(START_ATTEMPTS if port is None else 1):
        chosen = port or free_port()
        host = f"http://127.0.0.1:{chosen}"
        command = [executable, *storage, "start", "--host=127.0.0.1", f"--port={chosen}", "--quiet",
                   *([] if data_dir is not None else ["--in-memory"])]
        # Output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server. Its own process
        # group, so stopping it signals nothing else.
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(host):
                return GCSEmulator(host=host, process=process, log_path=log_path)
            time.sleep(0.05)
        timed_out = process.poll() is None
        stop_emulator(process)
        if timed_out:
            raise TrackingError(f"gcp-storage-emulator at {host} did not answer within {startup_timeout_s:g} s and "
                                f"was stopped; the last lines of its log ({log_path}):\n{log_tail(log_path)}")
    raise TrackingError(f"gcp-storage-emulator did not start; the last lines of its log ({log_path}):\n"
                        f"{log_tail(log_path)}")


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    """Stop the emulator (its own process group)."""
    stop_process_group(process, grace_s=5)
