"""A task's own deadline (``resources.<step>.timeout_seconds``), enforced from inside the task.

On KFP the pod's ``activeDeadlineSeconds`` ends a hung task; Vertex AI drops that Kubernetes setting, so the
pipeline spec also carries the timeout as ``MATTA_TASK_TIMEOUT_SECONDS`` (and the step as ``MATTA_TASK_STEP``,
set by `pipelines.task_settings`), and `arm_task_timeout` starts a watchdog that ends the process when it
expires: a hung task then fails (and is retried, if its step allows) on Vertex AI as it does on Kubernetes.

The clock starts when the task arms it (after the image is pulled and Python has started), so on KFP the pod's
deadline, which counts from the pod's start, usually fires first; the watchdog matters where there is none.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass

#: Whole seconds the task may run; unset or empty: no watchdog.
TASK_TIMEOUT_ENV = "MATTA_TASK_TIMEOUT_SECONDS"
#: The ``resources:`` step the timeout comes from, named in the message.
TASK_STEP_ENV = "MATTA_TASK_STEP"
#: The exit status of a task stopped by its watchdog (what coreutils' `timeout` uses).
TIMEOUT_EXIT_CODE = 124


class TaskTimeoutError(ValueError):
    """``MATTA_TASK_TIMEOUT_SECONDS`` holds something other than a positive whole number of seconds."""


@dataclass
class TaskTimeout:
    """An armed watchdog: `cancel` disarms it (for tests, and for a caller that finishes its work early)."""

    seconds: int
    step: str
    timer: threading.Timer

    def cancel(self) -> None:
        self.timer.cancel()
        faulthandler.cancel_dump_traceback_later()


def arm_task_timeout(environ: Mapping[str, str] = os.environ, *, grace_seconds: float = 30.0) -> TaskTimeout | None:
    """Start the watchdog if `environ` sets ``MATTA_TASK_TIMEOUT_SECONDS``; return it, or None when unset.

    On expiry it writes one line to stderr (``matta: task exceeded its timeout of N s
    (resources.<step>.timeout_seconds); stopping``), the stacks of every thread (where the task hung), and ends the
    process with status 124 without running cleanup that could hang too. A Python thread cannot run while C code
    holds the interpreter lock, so `faulthandler` (a C thread) is armed `grace_seconds` later as a backstop: it
    dumps the stacks and exits with status 1. Only one faulthandler deadline exists per process: this one replaces
    any other. `TaskTimeoutError` for a value that is not a positive whole number.
    """
    text = environ.get(TASK_TIMEOUT_ENV, "").strip()
    if not text:
        return None
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise TaskTimeoutError(f"{TASK_TIMEOUT_ENV}={text!r}: expected a positive whole number of seconds "
                               "(from resources.<step>.timeout_seconds)")
    step = environ.get(TASK_STEP_ENV, "").strip() or "<step>"
    timer = threading.Timer(seconds, _expire, args=(seconds, step))
    timer.daemon = True  # never keeps a finished task alive
    timer.name = "matta-task-timeout"
    timer.start()
    faulthandler.dump_traceback_later(seconds + grace_seconds, exit=True)
    return TaskTimeout(seconds, step, timer)


def _expire(seconds: int, step: str) -> None:
    try:
        sys.stderr.write(f"matta: task exceeded its timeout of {seconds} s (resources.{step}.timeout_seconds); "
                         "stopping\n")
        sys.stderr.flush()
        sys.stdout.flush()
        faulthandler.dump_traceback(all_threads=True)
    except (OSError, ValueError, AttributeError):  # a closed or replaced stream must not keep the task alive
        pass
    finally:
        os._exit(TIMEOUT_EXIT_CODE)
