"""Expected errors in a pipeline task: print matta's message, not a traceback, and exit non-zero.

An error like "data/train.csv: missing column 'label'" is the whole story; the ~50 lines of stack that KFP would
print above it only bury it. Set ``MATTA_DEBUG=1`` (``matta --debug`` does) to get the traceback back.
Importable without torch, so any task may use it.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

#: "1" re-raises expected errors with their traceback.
DEBUG_ENV = "MATTA_DEBUG"
#: The exit status of a task stopped by an expected error (a failed task, as any other failure: KFP retries and
#: reports it the same way; the message says what to fix).
EXPECTED_ERROR_EXIT_CODE = 1


@contextmanager
def exit_on_expected_errors(step: str, *expected: type[BaseException]) -> Iterator[None]:
    """Inside, an error of one of the `expected` types ends the process: ``matta <step>: error: <message>`` on
    stderr and exit status 1 (`SystemExit`, which prints no traceback). Other errors pass through unchanged, as do
    expected ones when ``MATTA_DEBUG=1``."""
    try:
        yield
    except expected as error:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        print(f"matta {step}: error: {error}", file=sys.stderr, flush=True)
        print(f"(set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr, flush=True)
        raise SystemExit(EXPECTED_ERROR_EXIT_CODE) from None


#: errno values that mean "the filesystem is full" (no space; over the user's quota).
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


#: How libraries that do not raise OSError (safetensors' Rust core, pyarrow) word the same failure.
_DISK_FULL_TEXT = ("no space left on device", "os error 28", "errno 28", "disk quota exceeded")


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, is a write refused by a full filesystem."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return True
        if any(text in str(error).lower() for text in _DISK_FULL_TEXT):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def disk_full_message(error: BaseException, step: str) -> str:
    """matta's paragraph for a write that failed because the filesystem is full."""
    filename = getattr(error, "filename", None)
    where = f" writing {filename}" if filename else ""
    return (f"matta {step}: error: no space left on the device{where} ({error}). This step wrote nothing "
            "that a rerun would read: free space there (or point output_dir / cache_dir / train.checkpoint_dir "
            "elsewhere) and run again; the steps that finished are reused and training resumes from its newest "
            "checkpoint.")


def install_task_excepthook(step: str) -> None:
    """Make a full disk end the task with `disk_full_message` instead of a traceback (any step can hit it, deep in
    torch, pandas or safetensors, so it is caught where every uncaught error goes). Exit status 1 as before;
    ``MATTA_DEBUG=1`` keeps the traceback."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if is_disk_full(error) and os.environ.get(DEBUG_ENV) != "1":
            print(disk_full_message(error, step), file=sys.stderr, flush=True)
            print(f"(set {DEBUG_ENV}=1 for the traceback)", file=sys.stderr, flush=True)
            return
        previous(kind, error, tb)

    sys.excepthook = hook
