"""A local cron scheduler for pipeline runs (a laptop or one VM without KFP): same cron, no overlap, a JSONL log.

The job is a callable or a command list (run in a subprocess, e.g. ``["matta", "run", "--config", "run.yaml"]``).
At each tick the job starts unless the previous run is still going; then the tick is SKIPPED and logged, never
queued (a queue would let a slow pipeline fall further behind every night, and two training runs racing for
the same store and registry is what ``max_concurrency=1`` prevents on KFP too). Every event is one JSON line:

    {"event": "start",   "run": 1, "scheduled_for": "...", "at": "..."}
    {"event": "end",     "run": 1, "status": "succeeded"|"failed", "returncode": 0, "started_at", "ended_at",
     "seconds": 2.5, "error": null}
    {"event": "skipped", "scheduled_for": "...", "at": "...", "reason": "run 1 still running"}
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matta_core.release.cron import parse_cron

log = logging.getLogger(__name__)

Job = Callable[[], Any] | Sequence[str]


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds")


class _JsonlLog:
    """Append-only JSONL, one line per event, flushed at once (a crash loses nothing written)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        with self._lock, self.path.open("a") as out:
            out.write(json.dumps(event, sort_keys=True) + "\n")


def _run_job(job: Job) -> int:
    """Run the job; its exit status (a callable that returns an int gives that, None counts as 0)."""
    if callable(job):
        result = job()
        return int(result) if isinstance(result, int) and not isinstance(result, bool) else 0
    return subprocess.run(list(job), check=False).returncode


def run_schedule(
    cron: str,
    job: Job,
    log_path: str | Path,
    *,
    max_runs: int | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[dict[str, Any]]:
    """Run `job` at every tick of `cron` until `max_runs` runs started (and finished) or `stop` is set.

    Returns the events written to `log_path`. A callable that raises, or a command that exits non-zero, is a
    failed run: it is logged and the schedule goes on.
    """
    if isinstance(job, str):
        raise TypeError("pass the command as a list of arguments (['matta', 'run', ...]), not one string")
    if max_runs is not None and max_runs < 1:
        raise ValueError(f"max_runs must be >= 1, got {max_runs}")
    schedule = parse_cron(cron)
    journal = _JsonlLog(log_path)
    events: list[dict[str, Any]] = []
    stop = stop or threading.Event()
    current: threading.Thread | None = None
    started = 0

    def emit(event: dict[str, Any]) -> None:
        events.append(event)
        journal.write(event)

    def execute(number: int, scheduled_for: datetime) -> None:
        begin = clock()
        emit({"event": "start", "run": number, "scheduled_for": _iso(scheduled_for), "at": _iso(begin)})
        returncode, error = None, None
        try:
            returncode = _run_job(job)
        except Exception as exc:  # a failing job is recorded; the schedule goes on
            error = f"{type(exc).__name__}: {exc}"
            log.exception("scheduled run %d failed", number)
        end = clock()
        emit({"event": "end", "run": number, "status": "succeeded" if error is None and returncode == 0 else "failed",
              "returncode": returncode, "error": error, "started_at": _iso(begin), "ended_at": _iso(end),
              "seconds": round((end - begin).total_seconds(), 3)})

    tick = schedule.next_after(clock())
    while not stop.is_set() and (max_runs is None or started < max_runs):
        wait = (tick - clock()).total_seconds()
        if wait > 0 and stop.wait(wait):
            break
        if current is not None and current.is_alive():
            emit({"event": "skipped", "scheduled_for": _iso(tick), "at": _iso(clock()),
                  "reason": f"run {started} still running"})
        else:
            started += 1
            current = threading.Thread(target=execute, args=(started, tick), name=f"scheduled-run-{started}")
            current.start()
        tick = schedule.next_after(max(tick, clock()))  # a late tick does not fire the missed ones (no catch-up)
    if current is not None:
        current.join()
    return events


def no_overlap(events: Sequence[dict[str, Any]]) -> bool:
    """True if no run started before the previous one ended (what `run_schedule` guarantees)."""
    runs: dict[int, dict[str, str]] = {}
    for event in events:
        if event["event"] in ("start", "end"):
            runs.setdefault(event["run"], {})[event["event"]] = event["at" if event["event"] == "start" else "ended_at"]
    ordered = [runs[n] for n in sorted(runs)]
    return all(prev.get("end") is not None and prev["end"] <= nxt["start"] for prev, nxt in itertools.pairwise(ordered))

