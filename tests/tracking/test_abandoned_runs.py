"""Runs left RUNNING by a driver that was SIGKILLed: the next pipeline run of the experiment (what `matta run`
opens) marks them FAILED and says so; how a driver is judged dead, on real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from matta_core.tracking import pipeline_run
from matta_core.tracking import tags as T
from matta_core.tracking.driver import driver_tags, driver_verdict, process_start


def _killed_driver(uri: str, experiment: str, script_dir: Path, cwd: Path) -> dict[str, str]:
    """Run ids ("parent", "step") of a driver and its step, SIGKILLed together (as `kill -9 -<pgid>`) while the
    step logs; both runs are left RUNNING."""
    driver = subprocess.Popen([sys.executable, str(script_dir / "tracked_driver.py"), uri, experiment, "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                              start_new_session=True)
    try:
        ids = {}
        for line in driver.stdout or []:
            key, _, value = line.strip().partition(" ")
            ids[key] = value
            if key == "step":
                break
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    client = mlflow.MlflowClient(uri)
    assert {key: client.get_run(ids[key]).info.status for key in ("parent", "step")} == {
        "parent": "RUNNING", "step": "RUNNING"}, driver.stderr.read() if driver.stderr else ""
    assert client.get_run(ids["parent"]).data.tags[T.DRIVER_PID] == str(driver.pid)
    return ids


def test_a_sigkilled_drivers_run_is_ended_by_the_next_run(  # type: ignore[no-untyped-def]
        sqlite_uri: str, experiment_name: str, script_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        fault_record) -> None:
    ids = _killed_driver(sqlite_uri, experiment_name, script_dir, tmp_path)
    client = mlflow.MlflowClient(sqlite_uri)
    killed_pid = client.get_run(ids["parent"]).data.tags[T.DRIVER_PID]

    with pipeline_run(sqlite_uri, experiment_name, "next") as new:
        said = capsys.readouterr().out
    assert said.count("\n") == 1 and f"marked FAILED 1 run(s) of experiment {experiment_name!r}" in said
    assert f"{ids['parent']} (its driver (pid {killed_pid} on this host) is gone)" in said
    for key in ("parent", "step"):
        run = client.get_run(ids[key])
        assert run.info.status == "FAILED" and run.data.tags[T.ENDED_BY] == "run-start", key
    next_run = client.get_run(new.run_id)
    assert next_run.info.status == "FINISHED" and next_run.data.tags[T.DRIVER_PID] == str(os.getpid())
    fault_record("`matta run` SIGKILLed, its MLflow runs left RUNNING", fault="the driver and its step killed "
                 "with SIGKILL (kill -9 of the process group) while the step logs",
                 sees=said.strip().replace(experiment_name, "<experiment>"),  # the name is this test's, random
                 kept="the dead driver's runs (parent and steps), marked FAILED when the experiment's next run starts")


def test_a_resumed_run_is_reopened_under_its_new_driver_not_ended(
        sqlite_uri: str, experiment_name: str, script_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    ids = _killed_driver(sqlite_uri, experiment_name, script_dir, tmp_path)
    client = mlflow.MlflowClient(sqlite_uri)
    with pipeline_run(sqlite_uri, experiment_name, "again", resume_run_id=ids["parent"]) as again:
        assert capsys.readouterr().out == ""  # nothing ended: the dead driver's run is this one
        assert again.run_id == ids["parent"] and again.name == "driven"
        reopened = client.get_run(again.run_id)
        assert reopened.info.status == "RUNNING" and reopened.data.tags[T.DRIVER_PID] == str(os.getpid())
    assert client.get_run(ids["parent"]).info.status == "FINISHED"


def test_a_driver_is_dead_only_when_that_is_certain() -> None:
    here = socket.gethostname()
    me = driver_tags()
    assert me[T.DRIVER_HOST] == here and driver_verdict(me).dead is False
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    gone = {**me, T.DRIVER_PID: finished.stdout.strip()}
    assert driver_verdict(gone).dead is True and "is gone" in driver_verdict(gone).why
    start = process_start(os.getpid())
    if start is None:
        pytest.skip("no /proc: the pid-reuse and reboot checks need the process start it gives")
    boot, ticks = start.split("/")
    reused = {**me, T.DRIVER_START: f"{boot}/{int(ticks) - 1}"}  # this pid, but a process that started earlier
    assert driver_verdict(reused).dead is True and "belongs to another process" in driver_verdict(reused).why
    rebooted = {**me, T.DRIVER_START: f"another-boot/{ticks}"}
    assert driver_verdict(rebooted).dead is True and "restarted" in driver_verdict(rebooted).why
    elsewhere = {**me, T.DRIVER_HOST: f"not-{here}"}
    assert driver_verdict(elsewhere).dead is None and "ran on host" in driver_verdict(elsewhere).why
    assert driver_verdict({}).dead is None
