"""A tracking server killed mid-run: the driver and its step fail within the retry budget, with matta's message and
no traceback; once the server is back on the same store, `matta runs cleanup` marks the abandoned runs FAILED and
leaves live ones alone.

Real processes throughout: an MLflow server (SIGKILLed, then restarted on its sqlite store), a driver process on
`matta run`'s tracking code path with one step process under it (`scripts/tracked_driver.py`), and the installed
``matta`` command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from matta_core.tracking import tags as T
from matta_core.tracking.driver import driver_tags
from matta_core.tracking.retries import BACKOFF_FACTOR_ENV, BACKOFF_JITTER_ENV, MAX_RETRIES_ENV, REQUEST_TIMEOUT_ENV
from tests.mlflow_server import MLflowServer, start_server, stop_server

MATTA = Path(sys.executable).parent / "matta"
RETRY_SECONDS = 5
#: The budget (5 s of waiting), the step's last attempt and the driver's, plus process start-up on a busy machine.
BOUND_S = 20


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MLflowServer]:
    """A server of this test's own (it gets killed); stopped at the end whatever happened."""
    started = start_server(tmp_path / "server")
    try:
        yield started
    finally:
        stop_server(started.process)


def _clean_env() -> dict[str, str]:
    """The test's environment without retry settings of its own, so the driver's budget is the one that counts."""
    env = dict(os.environ)
    for key in (MAX_RETRIES_ENV, BACKOFF_FACTOR_ENV, BACKOFF_JITTER_ENV, REQUEST_TIMEOUT_ENV,
                "MATTA_TRACKING_RETRY_SECONDS", "MATTA_DEBUG", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    return env


def _start_driver(script_dir: Path, uri: str, experiment: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script_dir / "tracked_driver.py"), uri, experiment, str(RETRY_SECONDS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=_clean_env(),
        start_new_session=True)


def _read_until(process: subprocess.Popen[str], prefix: str) -> tuple[str, list[str]]:
    """The first stdout line of `process` starting with `prefix` (its last word) and the lines read so far."""
    lines = []
    for line in process.stdout or []:
        lines.append(line)
        if line.startswith(prefix):
            return line.split()[-1], lines
    process.wait(timeout=60)
    raise AssertionError(f"no {prefix!r} line; stdout: {''.join(lines)}; stderr: {process.stderr.read()}")


@pytest.mark.timeout(240)
def test_killed_server_ends_the_run_in_bounded_time_and_cleanup_marks_it_failed(
        server: MLflowServer, experiment_name: str, script_dir: Path, tmp_path: Path,
        fault_record) -> None:  # type: ignore[no-untyped-def]
    driver = _start_driver(script_dir, server.uri, experiment_name, tmp_path)
    try:
        parent_id, _ = _read_until(driver, "parent ")
        step_id, _ = _read_until(driver, "step ")
        arm_id, _ = _read_until(driver, "arm ")
        time.sleep(1)  # the step is logging its metrics now
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        killed = time.monotonic()
        out, err = driver.communicate(timeout=120)
        took = time.monotonic() - killed
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)

    assert driver.returncode == 1, err
    assert took < BOUND_S, f"the driver took {took:.1f} s to give up; stderr: {err}"
    assert "Traceback" not in err, err
    said = f"error: the MLflow tracking server at {server.uri} stopped answering during the run ("
    [error] = [line for line in err.splitlines() if line.startswith(said)]
    assert f"its parent run {parent_id} could not be closed" in err and "`matta runs cleanup`" in err
    # The step (its log is the driver's stdout, as under kfp.local) failed within the budget it inherited.
    assert "stopped answering during step 'train'" in out and f"its run {step_id} could not be closed" in out

    back = start_server(server.root)  # the same sqlite store and artifacts, on a new port
    try:
        _cleanup_after_restart(back.uri, experiment_name, parent_id, [step_id, arm_id])
    finally:
        stop_server(back.process)
    fault_record("MLflow tracking server killed mid-run", fault="the tracking server is SIGKILLed while a step "
                 "logs its metrics", sees=error, kept="the steps' outputs; the driver exits 1 within the retry "
                 "budget; after a restart `matta runs cleanup` marks the abandoned runs FAILED")


def _cleanup_after_restart(uri: str, experiment: str, parent_id: str, below: list[str]) -> None:
    client = mlflow.MlflowClient(uri)
    # Nobody could close them.
    assert [client.get_run(run_id).info.status for run_id in [parent_id, *below]] == ["RUNNING"] * 3
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    pipeline = {T.RUN_KIND: T.RUN_KIND_PIPELINE}
    # A live run (its driver is this test process) and one whose driver ran elsewhere: neither is provably dead.
    live = client.create_run(experiment_id, run_name="live", tags={**pipeline, **driver_tags()}).info.run_id
    remote = client.create_run(experiment_id, run_name="remote", tags={
        **pipeline, T.DRIVER_HOST: "build-agent-7.example", T.DRIVER_PID: "4242"}).info.run_id

    done = _matta("runs", "cleanup", "--tracking-uri", uri, "--experiment", experiment)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    [ended] = [line for line in lines if line.startswith("ended FAILED: ")]
    assert f"run {parent_id} 'driven'" in ended and "is gone" in ended and "2 step run(s) with it" in ended
    assert "View run" not in done.stdout
    assert any(line.startswith(f"left RUNNING: run {live} ") and "still running" in line for line in lines)
    assert any(line.startswith(f"left RUNNING: run {remote} ") and "build-agent-7.example" in line
               and "--older-than" in line for line in lines)
    assert lines[-1] == f"ended FAILED 1 run(s), left 2 running, in {uri}"

    for run_id in (parent_id, *below):
        run = client.get_run(run_id)
        assert run.info.status == "FAILED" and run.data.tags[T.ENDED_BY] == "cleanup", run_id
        assert "is gone" in run.data.tags[T.ENDED_REASON]
    assert client.get_run(live).info.status == "RUNNING"
    assert client.get_run(remote).info.status == "RUNNING"

    # The age rule ends the remote run, never the live one; a dry run changes nothing.
    dry = _matta("runs", "cleanup", "--tracking-uri", uri, "--experiment", experiment, "--older-than", "0",
                 "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [line.split()[3] for line in dry.stdout.splitlines() if line.startswith("would end: ")] == [remote]
    assert client.get_run(remote).info.status == "RUNNING"
    client.set_terminated(live)


def _matta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MATTA), *args], capture_output=True, text=True, timeout=120, env=_clean_env())
