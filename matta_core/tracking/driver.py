"""Which process drives a pipeline run, and whether it is provably gone: how abandoned runs are told from live ones.

`pipeline_run` tags its parent run with its driver (`driver_tags`): the host name, the pid, and the process's
start (``<boot id>/<start time in clock ticks>`` from ``/proc`` on Linux: exact, and different for a pid reused
after the driver died or after a reboot). `driver_verdict` reads those tags back on the same host. A driver counts
as dead only when that is certain: its pid is gone (or a zombie), or the pid now belongs to a process that started
at another time. A run from another host, or one without driver tags (a cluster run, opened by the pipeline's
first task), is never judged by this: only its age can end it (`matta_core.tracking.cleanup`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from matta_core.tracking import tags as T

_PROC = Path("/proc")


@dataclass(frozen=True)
class Verdict:
    """`dead`: True when the driver is provably gone, False when it runs, None when this host cannot tell."""

    dead: bool | None
    why: str


def driver_tags() -> dict[str, str]:
    """The tags naming this process as a run's driver (the start tag only where the OS tells it)."""
    tags = {T.DRIVER_HOST: socket.gethostname(), T.DRIVER_PID: str(os.getpid())}
    start = process_start(os.getpid())
    if start is not None:
        tags[T.DRIVER_START] = start
    return tags


def process_start(pid: int) -> str | None:
    """``<boot id>/<start ticks>`` of process `pid`, None if it does not exist or this OS has no ``/proc``."""
    try:
        boot_id = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    fields = stat[stat.rindex(")") + 2:].split()
    return f"{boot_id}/{fields[19]}"  # field 22, starttime


def driver_verdict(tags: Mapping[str, str], host: str | None = None) -> Verdict:
    """Whether the driver named by a run's `tags` is provably gone, judged from `host` (default: this one)."""
    here = host or socket.gethostname()
    driver_host, pid_text = tags.get(T.DRIVER_HOST), tags.get(T.DRIVER_PID, "")
    if not driver_host or not pid_text.isdigit() or int(pid_text) <= 0:
        return Verdict(None, "no driver recorded (a cluster run, or one started by an older matta)")
    if driver_host != here:
        return Verdict(None, f"its driver ran on host {driver_host}")
    pid = int(pid_text)
    where = f"pid {pid} on this host"
    if not _exists(pid):
        return Verdict(True, f"its driver ({where}) is gone")
    recorded, current = tags.get(T.DRIVER_START), process_start(pid)
    if recorded and current:
        if recorded.split("/")[0] != current.split("/")[0]:
            return Verdict(True, f"its driver ({where}) ran before this machine restarted")
        if recorded != current:
            return Verdict(True, f"its driver ({where}) is gone; the pid now belongs to another process")
    return Verdict(False, f"its driver ({where}) is still running")


def _exists(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return not _PROC.is_dir()  # gone between the two looks, unless there is no /proc to look in
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"
