"""`matta stack`, the script a user runs: it prints the environment to export, serves until SIGTERM, then stops
every process it started and exits 0."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import mlflow
import pytest

from matta_core.tracking.local_server import port_in_use
from tests.kfp.helpers import MATTA, cli_env
from tests.production_stack import stack_processes_since


@pytest.mark.slow
def test_stack_command_serves_until_sigterm_then_stops_everything(tmp_path: Path) -> None:
    started_at = time.time()
    log = tmp_path / "stack.out"
    with open(log, "w") as out:
        process = subprocess.Popen([str(MATTA), "stack", str(tmp_path / "state")], stdout=out,
                                   stderr=subprocess.STDOUT, env=cli_env(), text=True)
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops it" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        printed = log.read_text()
        exports = dict(line.removeprefix("export ").split("=", 1) for line in printed.splitlines()
                       if line.startswith("export "))
        assert set(exports) == {"MLFLOW_TRACKING_URI", "STORAGE_EMULATOR_HOST", "MATTA_STACK_BUCKET"}, printed
        client = mlflow.MlflowClient(exports["MLFLOW_TRACKING_URI"])
        run = client.create_run(client.create_experiment("from-the-user"))
        client.set_terminated(run.info.run_id)
        assert client.get_run(run.info.run_id).info.status == "FINISHED"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    assert log.read_text().rstrip().endswith("stack stopped")
    # Nothing listens where the user was told to connect any more ...
    for name in ("MLFLOW_TRACKING_URI", "STORAGE_EMULATOR_HOST"):
        assert not port_in_use(int(exports[name].rsplit(":", 1)[1])), name
    deadline = time.monotonic() + 5
    while stack_processes_since(started_at) and time.monotonic() < deadline:
        time.sleep(0.2)
    # ... and no PostgreSQL it started (pg_ctl detaches the postmaster, so it could outlive the command) is left.
    assert stack_processes_since(started_at) == []
