"""`arm_task_timeout`: a task ends itself when ``resources.<step>.timeout_seconds`` runs out (Vertex AI drops the
pod deadline). Real subprocesses: one hangs past its timeout, one finishes in time, one holds the interpreter lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from matta_core.task_timeout import (
    TASK_STEP_ENV,
    TASK_TIMEOUT_ENV,
    TIMEOUT_EXIT_CODE,
    TaskTimeoutError,
    arm_task_timeout,
)

# Arms the watchdog from the environment, as a task does at its start, then does `work`.
TASK = textwrap.dedent("""
    import sys, time
    from matta_core.task_timeout import arm_task_timeout
    arm_task_timeout(grace_seconds=float(sys.argv[2]))
    print("working", flush=True)
    {work}
    print("done", flush=True)
""")


def _run(work: str, timeout: str, *, grace: float = 30.0) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, TASK_TIMEOUT_ENV: timeout, TASK_STEP_ENV: "train"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", TASK.format(work=work), "x", str(grace)], env=env,
                            capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - started


def test_a_hung_task_is_stopped_at_its_timeout_with_a_clear_message() -> None:
    result, elapsed = _run("time.sleep(30)", "1")
    assert result.returncode == TIMEOUT_EXIT_CODE, result.stderr
    assert result.stdout == "working\n"
    first_line = result.stderr.splitlines()[0]
    assert first_line == "matta: task exceeded its timeout of 1 s (resources.train.timeout_seconds); stopping"
    assert "time.sleep" in result.stderr or "<string>" in result.stderr  # where it hung
    assert elapsed < 20


def test_a_task_that_finishes_in_time_exits_normally() -> None:
    result, _ = _run("time.sleep(0.2)", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "working\ndone\n" and "exceeded" not in result.stderr


def test_a_task_holding_the_interpreter_lock_is_stopped_by_the_backstop() -> None:
    # Catastrophic regex backtracking runs in C without releasing the lock: the Python watchdog cannot run.
    result, elapsed = _run("import re; re.match(r'(a+)+$', 'a' * 40 + 'b')", "1", grace=1.0)
    assert result.returncode != 0 and "done" not in result.stdout
    assert "Timeout" in result.stderr or "exceeded its timeout" in result.stderr
    assert elapsed < 20


def test_no_timeout_set_arms_nothing() -> None:
    assert arm_task_timeout({}) is None
    assert arm_task_timeout({TASK_TIMEOUT_ENV: ""}) is None


def test_an_armed_watchdog_can_be_cancelled() -> None:
    watchdog = arm_task_timeout({TASK_TIMEOUT_ENV: "3600", TASK_STEP_ENV: "report"})
    assert watchdog is not None and watchdog.seconds == 3600 and watchdog.step == "report"
    watchdog.cancel()
    watchdog.timer.join(5)
    assert not watchdog.timer.is_alive()


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "ten", "60s"])
def test_a_bad_timeout_is_a_clear_error(value: str) -> None:
    with pytest.raises(TaskTimeoutError) as error:
        arm_task_timeout({TASK_TIMEOUT_ENV: value})
    assert f"{TASK_TIMEOUT_ENV}={value!r}" in str(error.value) and "positive whole number" in str(error.value)
