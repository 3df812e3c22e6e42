"""A tracking server that stops answering mid-run: one clear error instead of minutes of retries and a traceback.

`TrackingUnavailable` is the error a person sees (`matta run` prints it and exits 1). `tracking_outages` wraps
the driver's parent-run block: it bounds MLflow's retries for the driver and the steps it starts
(`matta_core.tracking.retries`) and turns MLflow's connection errors into `TrackingUnavailable`.
`close_reporting_outages` is how `pipeline_run` / `step_run` end their run: after a failure it first asks the
server's ``/health`` (5 s), and when that does not answer it makes one attempt instead of a second full retry
budget; the run is then left RUNNING for `matta runs cleanup` (`matta_core.tracking.cleanup`) to mark FAILED.
"""

from __future__ import annotations

import http.client
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from matta_core.environment import environment
from matta_core.tracking.errors import TrackingError
from matta_core.tracking.retries import MAX_RETRIES_ENV, REQUEST_TIMEOUT_ENV, bounded_retries
from matta_core.tracking.uri import redact, unreachable_reason

#: Seconds the one last attempt to close a run waits for a server that did not answer ``/health``.
LAST_ATTEMPT_TIMEOUT_S = 5


class TrackingUnavailable(TrackingError):
    """The tracking server stopped answering while a run was using it; the message says what happened to the run
    and what to do."""

    def __init__(self, uri: str, reason: str, *, run_id: str | None = None, step: str | None = None) -> None:
        self.uri, self.reason, self.run_id, self.step = redact(uri), reason, run_id, step
        super().__init__(self._message())

    def _message(self) -> str:
        run = f" {self.run_id}" if self.run_id else ""
        if self.step:
            return (f"the MLflow tracking server at {self.uri} stopped answering during step {self.step!r} "
                    f"({self.reason}). The step stopped; its run{run} could not be closed and will be marked "
                    "FAILED by `matta runs cleanup` once the server is back. Check the server, then rerun.")
        return (f"the MLflow tracking server at {self.uri} stopped answering during the run ({self.reason}). The "
                f"run's steps stopped; its parent run{run} could not be closed and will be marked FAILED by "
                "`matta runs cleanup` or the next `matta run` once the server is back. Check the server, then rerun.")


def is_server_uri(uri: str | None) -> bool:
    """Whether `uri` names a tracking server reached over HTTP(S), the only kind that can stop answering."""
    return bool(uri) and urllib.parse.urlsplit(str(uri)).scheme.lower() in ("http", "https")


def outage_reason(error: BaseException) -> str | None:
    """A short reason (``connection refused``, ...) when `error` is MLflow's client failing to reach its server
    (after its retries), else None. Looks through the chain of causes MLflow, requests and urllib3 build."""
    import requests
    import urllib3.exceptions
    from mlflow.exceptions import MlflowException

    if not isinstance(error, MlflowException | requests.RequestException | urllib3.exceptions.HTTPError
                      | ConnectionError | TimeoutError):
        return None
    chain = _chain(error)
    checks: list[tuple[tuple[type[BaseException], ...], str]] = [
        ((ConnectionRefusedError,), "connection refused"),
        ((socket.gaierror,), "host name not found"),
        ((ConnectionResetError, http.client.RemoteDisconnected, urllib3.exceptions.ProtocolError),
         "the connection was dropped"),
        ((TimeoutError, requests.Timeout, urllib3.exceptions.TimeoutError),
         f"no answer within {os.environ.get(REQUEST_TIMEOUT_ENV, '120')} s"),
        ((requests.exceptions.RetryError, urllib3.exceptions.ResponseError), "it kept answering with server errors"),
        ((requests.ConnectionError, ConnectionError), "could not connect"),
    ]
    for kinds, reason in checks:
        if any(isinstance(link, kinds) for link in chain):
            return reason
    return None


@contextmanager
def tracking_outages(uri: str | None, retry_seconds: float | None = None) -> Iterator[None]:
    """For the block: MLflow's retries bounded to about `retry_seconds` (for this process and the ones it starts)
    and, when `uri` is a server, its connection errors raised as `TrackingUnavailable`."""
    with bounded_retries(retry_seconds):
        try:
            yield
        except TrackingUnavailable:
            raise
        except Exception as error:
            reason = outage_reason(error) if is_server_uri(uri) else None
            if reason is None or uri is None:
                raise
            raise TrackingUnavailable(uri, reason) from error


def close_reporting_outages(uri: str, run_id: str, close: Callable[[], None], *, after_failure: bool,
                            step: str | None = None) -> None:
    """Run `close` (end run `run_id`); raise `TrackingUnavailable` when the server at `uri` does not answer.

    After a failure (`after_failure`) the cause may well be the server itself: if ``/health`` does not answer,
    `close` gets one attempt without retries, so a process that already waited out its retry budget does not wait
    it out again. (MLflow's ``end_run`` forgets the active run before it calls the server, so nothing retries it
    at exit either.)
    """
    gone = unreachable_reason(uri) if after_failure and is_server_uri(uri) else None
    try:
        with _one_attempt() if gone else nullcontext():
            close()
    except Exception as error:
        reason = gone or (outage_reason(error) if is_server_uri(uri) else None)
        if reason is None:
            raise
        raise TrackingUnavailable(uri, reason, run_id=run_id, step=step) from error


def _one_attempt() -> AbstractContextManager[None]:
    return environment({MAX_RETRIES_ENV: "0", REQUEST_TIMEOUT_ENV: str(LAST_ATTEMPT_TIMEOUT_S)})


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and everything it was raised from or while handling, including urllib3's ``reason`` and the
    exception requests wraps as its first argument."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [error]
    while todo:
        link = todo.pop()
        if any(link is s for s in seen):
            continue
        seen.append(link)
        nested = [link.__cause__, link.__context__, getattr(link, "reason", None), *link.args[:1]]
        todo.extend(n for n in nested if isinstance(n, BaseException))
    return seen
