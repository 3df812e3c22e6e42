"""One `matta run` at a time per output folder: a lock held for the run's whole life.

Two runs into one folder (a cron overlap, two operators) would share the pipeline root, the step cache, the
published ``report/`` and ``release/`` folders and the run record, and the last one to publish would overwrite what
the other handed off. So the second run is refused at once, with a message naming the holder.

The lock is ``flock`` on ``<output_dir>/.matta-run.lock``: the kernel drops it when its holder dies, however it
dies (SIGKILL included), so a killed run never blocks the next one. The file also records who holds it (host, pid,
start time, command line); a run that gets the lock and finds a record left behind knows its holder ended without
releasing it (killed, or its machine lost power) and says so as it takes over. The descriptor is not inherited by
the steps' processes (Python opens files non-inheritable), so the lock lives exactly as long as the driver.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOCK_FILE = ".matta-run.lock"


class RunFolderBusy(RuntimeError):
    """Another live `matta run` holds the output folder."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a folder's lock."""

    host: str
    pid: int
    started_at: float
    command: str

    @classmethod
    def me(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), time.time(), " ".join(sys.argv) or "python")

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return f"pid {self.pid} on {self.host}, started {started} ({self.command})"

    def is_alive(self) -> bool | None:
        """Whether the process still runs: None when it is on another host (we cannot tell from here)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, another user's
            return True
        return True


def _read_holder(text: str) -> Holder | None:
    try:
        record = json.loads(text)
        return Holder(str(record["host"]), int(record["pid"]), float(record["started_at"]), str(record["command"]))
    except (ValueError, KeyError, TypeError):
        return None


class RunFolderLock:
    """``with RunFolderLock(output_dir) as lock:`` holds `output_dir` for one run; `lock.taken_over` names the
    holder whose lock was left behind, if any."""

    def __init__(self, output_dir: str | Path) -> None:
        self.folder = Path(output_dir)
        self.path = self.folder / LOCK_FILE
        self.taken_over: Holder | None = None
        self._fd: int | None = None

    def acquire(self) -> RunFolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(_read_all(fd))
            os.close(fd)
            who = holder.describe() if holder else "a process that has not yet written its name"
            raise RunFolderBusy(
                f"output folder {self.folder} is in use by another matta run: {who}. Wait for it to finish, or "
                "give this run its own folder (--set output_dir=...)") from None
        except OSError as error:
            os.close(fd)
            raise RunFolderBusy(f"cannot lock output folder {self.folder} ({error.strerror}): matta run needs a "
                                "local folder whose filesystem supports flock") from None
        left = _read_all(fd).strip()
        self.taken_over = _read_holder(left) if left else None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(Holder.me().__dict__).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Clear the holder record and drop the lock (the file stays: deleting it would race a new holder)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")
