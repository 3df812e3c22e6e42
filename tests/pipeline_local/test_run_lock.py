"""One run per output folder: a live holder refuses a second run at once; a killed holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.run_lock import LOCK_FILE, RunFolderBusy, RunFolderLock

HOLD = """
import sys, time
from pipelines.run_lock import RunFolderLock
lock = RunFolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


def _holder(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_into_a_held_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    holder = _holder(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(RunFolderBusy) as refused:
            RunFolderLock(tmp_path).acquire()
        assert time.monotonic() - started < 2  # refused at once, not after a wait
        assert f"pid {holder.pid}" in str(refused.value) and str(tmp_path) in str(refused.value)
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over_and_said(tmp_path: Path) -> None:
    holder = _holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with RunFolderLock(tmp_path) as lock:
        assert lock.taken_over is not None and lock.taken_over.pid == holder.pid
        assert lock.taken_over.is_alive() is False
        with pytest.raises(RunFolderBusy):  # held again, now by us
            RunFolderLock(tmp_path).acquire()
    # Released cleanly: the next run finds no holder record to take over.
    with RunFolderLock(tmp_path) as again:
        assert again.taken_over is None
    assert (tmp_path / LOCK_FILE).read_text() == ""
