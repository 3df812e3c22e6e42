"""How many CPUs this process may really use, and torch's thread count set to match.

torch sizes its intra-op thread pool by the cores it sees on the node, not by the container's CPU limit: a pod
limited to 2 CPUs on a 64-core node runs 64 threads, which the kernel's CFS quota then throttles for most of each
period, so training runs many times slower than with 2 threads. `apply_cpu_limit_to_torch` fixes that by reading
the limit from the places the kernel enforces it: the CPU affinity mask and the cgroup CPU quota (v2 ``cpu.max``,
v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``). A task calls `apply_cpu_limit` as it starts, which does the same
without importing torch for it.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

#: Where cgroup files are mounted inside a container (v2: the process's own cgroup; v1: one folder per controller).
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Set by whoever wants to choose the thread count themselves; then this module leaves torch alone.
OMP_ENV = "OMP_NUM_THREADS"


def cpu_limit(root: Path = CGROUP_ROOT) -> int | None:
    """Whole CPUs this process may use: the smallest of its affinity mask and its cgroup quota, or None if neither
    limits it (no quota, and the mask holds every CPU of the machine). A fractional quota (1.5 CPUs) rounds up,
    since the last thread still gets useful time; at least 1."""
    limits = [n for n in (_affinity(), _cgroup_quota(root)) if n is not None]
    return max(1, min(limits)) if limits else None


def apply_cpu_limit() -> int | None:
    """What a task calls as it starts: torch's intra-op threads limited to `cpu_limit()`, whether or not the task
    goes on to use torch. Returns the thread count set, or None where nothing was set.

    With torch imported: `apply_cpu_limit_to_torch()`. Not imported: the limit goes into ``OMP_NUM_THREADS``,
    which torch reads when it sizes its thread pool, so a task that never uses torch (prepare, report, release)
    does not import it (~1.2 s) only to set its thread count. Left alone when ``OMP_NUM_THREADS`` is set. Unlike
    `apply_cpu_limit_to_torch` this may exceed torch's default where that is the physical core count and the
    limit counts hyper-threads: one thread per CPU the task may use, which its quota allows.
    """
    if "torch" in sys.modules:
        return apply_cpu_limit_to_torch()
    if os.environ.get(OMP_ENV):
        return None
    limit = cpu_limit()
    if limit is not None:
        os.environ[OMP_ENV] = str(limit)
    return limit


def apply_cpu_limit_to_torch(explicit: int | None = None) -> int:
    """Set torch's intra-op threads to `explicit`, or else to `cpu_limit()`; return the thread count in use.

    Without `explicit` the count is only ever lowered (never above torch's default), and left alone when
    ``OMP_NUM_THREADS`` is set: whoever set it chose the count on purpose.
    """
    import torch  # here, not at module level: reading the limit must not cost a torch import

    if explicit is not None:
        if explicit < 1:
            raise ValueError(f"explicit thread count must be >= 1, got {explicit}")
        torch.set_num_threads(explicit)
        return explicit
    current = torch.get_num_threads()
    if os.environ.get(OMP_ENV):
        return current
    limit = cpu_limit()
    if limit is not None and limit < current:
        torch.set_num_threads(limit)
        return limit
    return current


def _affinity() -> int | None:
    """CPUs in this process's affinity mask when that is fewer than the machine has (a mask of all is no limit)."""
    if not hasattr(os, "sched_getaffinity"):  # macOS, Windows: no affinity masks
        return None
    allowed = len(os.sched_getaffinity(0))
    return allowed if 0 < allowed < (os.cpu_count() or allowed + 1) else None


def _cgroup_quota(root: Path) -> int | None:
    """CPUs allowed by the CFS quota (v2 first, then v1), rounded up; None when unlimited or not readable."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else _quota_cpus(quota, period or "100000")
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu", "."):
        folder = root / controller
        v1_quota, v1_period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if v1_quota is not None and v1_period is not None:
            return _quota_cpus(v1_quota, v1_period)  # v1 writes -1 for "no quota"
    return None


def _quota_cpus(quota: str, period: str) -> int | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None  # a file we do not understand limits nothing we can act on
    if quota_us <= 0 or period_us <= 0:
        return None
    return max(1, math.ceil(quota_us / period_us))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
