"""Helpers for the fault tests: `matta run` as its own process group (so a test can kill it as a machine or an
operator would), and waiting for the moment to strike."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.kfp.helpers import MATTA, cli_env


@dataclass
class RunningMatta:
    """A `matta run` process and the file its output goes to."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the driver and every step it started: nothing gets to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """`kill` unless it already ended (a test's finalizer: nothing is left running when the test fails)."""
        if self.proc.poll() is None:
            self.kill()

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended (exit {self.proc.returncode}) before {what}:\n"
                                     f"{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s")
            time.sleep(0.2)


def start_run(config: Path, cwd: Path, *extra: str) -> RunningMatta:
    """`matta run --config <config>` in a new session (its steps are its children), output to a log file."""
    log = cwd / f"{config.stem}-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(MATTA), "run", "--config", str(config), *extra], cwd=cwd, env=cli_env(),
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return RunningMatta(proc, log)
