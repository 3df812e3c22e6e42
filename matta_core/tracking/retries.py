"""How long an MLflow client keeps retrying a tracking server that stopped answering: a bounded budget.

MLflow's HTTP client retries a failed request with urllib3's exponential backoff: no wait before the first retry,
then ``factor * 2**(n - 1)`` seconds before retry n (capped at 120 s each), 7 retries with factor 2 by default,
about 4 minutes in all before a process learns that its server is gone. matta bounds that by one setting,
``tracking_retry_seconds`` (default 30 s), turned into MLflow's own environment variables (`http_retry_env`):
with 30 s, 5 retries after 0, 2, 4, 8 and 16 s. Each request also times out after ``max(10, budget)`` seconds
(at most 120), so a server that hangs instead of refusing connections is given up on too, within
``(retries + 1) * timeout + budget`` seconds.

A value the user already set in the environment is never replaced. The driver (`matta run`) sets the variables
for itself and the step processes it starts (`bounded_retries`); a cluster task gets only
``MATTA_TRACKING_RETRY_SECONDS`` on its pod and turns it into the variables when it first uses the store
(`apply_retry_budget`), after its Secret / ConfigMap / Secret Manager settings are in its environment, so those
keep precedence.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

#: The budget in seconds, as the compiled pipeline hands it to every cluster task.
RETRY_SECONDS_ENV = "MATTA_TRACKING_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 30
#: MLflow's variables (``mlflow/environment_variables.py``, mlflow 3.x).
MAX_RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
BACKOFF_FACTOR_ENV = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
BACKOFF_JITTER_ENV = "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"
REQUEST_TIMEOUT_ENV = "MLFLOW_HTTP_REQUEST_TIMEOUT"

# MLflow refuses more than 10 retries and a factor over 120 (its _MLFLOW_HTTP_REQUEST_MAX_*_LIMIT); urllib3 caps
# each wait at 120 s (Retry.DEFAULT_BACKOFF_MAX).
_MAX_RETRIES = 10
_MAX_FACTOR = 120
_MAX_WAIT_S = 120
_MIN_TIMEOUT_S = 10
_MAX_TIMEOUT_S = 120


def backoff_seconds(retries: int, factor: int) -> int:
    """Seconds MLflow's client waits in all over `retries` retries with backoff `factor` (jitter off)."""
    return sum(min(_MAX_WAIT_S, factor * 2 ** (n - 1)) for n in range(2, retries + 1))


def http_retry_env(seconds: float) -> dict[str, str]:
    """MLflow's retry variables for a budget of `seconds` of waiting between retries.

    The most retries whose waits add up to no more than `seconds` (the largest such total first, then the most
    retries, then the smallest factor); jitter off, so the budget holds exactly.
    """
    if seconds < 0:
        raise ValueError(f"a retry budget must be >= 0 seconds, got {seconds}")
    fits = [(backoff_seconds(r, f), r, -f) for r in range(_MAX_RETRIES + 1) for f in range(1, _MAX_FACTOR + 1)
            if backoff_seconds(r, f) <= seconds]
    _, retries, negative_factor = max(fits)
    timeout = int(min(_MAX_TIMEOUT_S, max(_MIN_TIMEOUT_S, seconds)))
    return {MAX_RETRIES_ENV: str(retries), BACKOFF_FACTOR_ENV: str(-negative_factor), BACKOFF_JITTER_ENV: "0",
            REQUEST_TIMEOUT_ENV: str(timeout)}


def apply_retry_budget(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """If ``MATTA_TRACKING_RETRY_SECONDS`` is set, put the MLflow retry variables it stands for into `environ`,
    each only where `environ` has none (non-empty) yet; return what was set. Idempotent: call it before a process
    first talks to the store."""
    raw = environ.get(RETRY_SECONDS_ENV, "").strip()
    if not raw:
        return {}
    added = {key: value for key, value in http_retry_env(_seconds(raw)).items() if not environ.get(key)}
    environ.update(added)
    return added


@contextmanager
def bounded_retries(seconds: float | None) -> Iterator[dict[str, str]]:
    """For the block, bound MLflow's retries in this process and the processes it starts to about `seconds`
    (None: `DEFAULT_RETRY_SECONDS`); variables already in the environment are kept, and a budget already in
    ``MATTA_TRACKING_RETRY_SECONDS`` outranks `seconds` (as the environment outranks the config elsewhere).
    Restored on exit. Yields the variables it set."""
    given = os.environ.get(RETRY_SECONDS_ENV, "").strip()
    budget = _seconds(given) if given else DEFAULT_RETRY_SECONDS if seconds is None else seconds
    wanted = {RETRY_SECONDS_ENV: f"{budget:g}", **http_retry_env(budget)}
    saved = {key: os.environ.get(key) for key in wanted}
    added = {key: value for key, value in wanted.items() if not os.environ.get(key)}
    os.environ.update(added)
    try:
        yield added
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _seconds(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{RETRY_SECONDS_ENV}={raw!r} is not a number of seconds") from None
