"""Which MLflow tracking store to use, and a fail-fast check that it can be used.

The default is the embedded store: one sqlite file, ``<output dir>/mlflow.db``, that needs no server. A
pipeline passes the resolved URI to every step, so all steps (separate processes, other working directories)
write to the same store.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from matta_core.tracking.errors import TrackingError

ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
DEFAULT_DB_FILE = "mlflow.db"
SQLITE_PREFIX = "sqlite:///"
_HINT = "start it, or leave tracking_uri empty for the embedded sqlite store"


def configured_tracking_uri(uri: str | None = None) -> str:
    """`uri`, else env ``MLFLOW_TRACKING_URI`` (on a cluster: from the MLflow Secret), else "": tracking off.

    Unlike `resolve_tracking_uri`, no embedded default: a cluster task without a store runs untracked."""
    return (uri or "").strip() or os.environ.get(ENV_TRACKING_URI, "").strip()


def resolve_tracking_uri(uri: str | None = None, output_dir: str | Path | None = None) -> str:
    """The tracking URI to use: `uri`, else env ``MLFLOW_TRACKING_URI``, else ``sqlite:///<output_dir>/mlflow.db``.

    An empty `uri` counts as none. `output_dir` defaults to the working directory. Relative sqlite paths
    (``sqlite:///mlflow.db``) and bare ``*.db`` paths become absolute ``sqlite:////abs/path.db`` URIs: a step that
    runs in another working directory would otherwise silently open a second, empty store. Any other URI
    (``http(s)://``, ``postgresql://``, ``databricks``, ...) is returned unchanged.
    """
    chosen = configured_tracking_uri(uri)
    if not chosen:
        base = Path(output_dir) if output_dir is not None else Path.cwd()
        return _sqlite_uri(base.absolute() / DEFAULT_DB_FILE)
    if chosen.startswith(SQLITE_PREFIX):
        path, _, query = chosen[len(SQLITE_PREFIX):].partition("?")
        if path == ":memory:" or not path:
            raise ValueError(
                f"tracking URI {chosen!r}: an in-memory sqlite store is private to one process; pipeline steps "
                "could not see it. Use sqlite:///<path>.db or leave tracking_uri empty"
            )
        return _sqlite_uri(Path(path).absolute()) + (f"?{query}" if query else "")
    if "://" not in chosen and chosen.endswith((".db", ".sqlite")):
        return _sqlite_uri(Path(chosen).absolute())
    return chosen


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, None for any other URI."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    return Path(urllib.parse.unquote(uri[len(SQLITE_PREFIX):].partition("?")[0]))


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Raise `TrackingError` with a clear message if the store at `uri` cannot be used; return quietly if it can.

    Checked: an ``http(s)://`` server must answer ``GET /health`` within `timeout` seconds (MLflow's own client
    would instead retry for minutes before failing); a sqlite store's folder must exist or be creatable, and be
    writable. Other stores are left to MLflow. Call it before a pipeline starts, so a typo costs seconds.
    """
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        _check_server(uri, timeout)
    elif scheme == "sqlite":
        path = sqlite_path(uri)
        if path is not None:
            _check_sqlite(uri, path)


def unreachable_reason(uri: str, timeout: float = 5.0) -> str | None:
    """Why the ``http(s)://`` server at `uri` does not answer ``GET /health`` within `timeout` seconds (``connection
    refused``, ``HTTP 503``, ...), or None when it answers (or `uri` names no server)."""
    if urllib.parse.urlsplit(uri).scheme.lower() not in ("http", "https"):
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from /health"
    except (urllib.error.URLError, OSError) as exc:
        return _why(exc, timeout)
    return None if 200 <= status < 300 else f"HTTP {status} from /health"


def redact(uri: str) -> str:
    """`uri` without a password, for messages and logs (``http://user:***@host``)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _sqlite_uri(path: Path) -> str:
    # path is absolute, so this gives the four-slash form sqlite:////abs/path.db that SQLAlchemy expects.
    return f"{SQLITE_PREFIX}{path}"


def _check_server(uri: str, timeout: float) -> None:
    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise TrackingError(
            f"MLflow tracking server at {redact(uri)} answered GET /health with HTTP {exc.code} {exc.reason}: is "
            f"this the URL of an MLflow server (mlflow server ...)? {_HINT}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingError(
            f"MLflow tracking server at {redact(uri)} is not reachable ({_why(exc, timeout)}) — {_HINT}"
        ) from exc
    if not 200 <= status < 300:
        raise TrackingError(f"MLflow tracking server at {redact(uri)} answered GET /health with HTTP {status}; "
                            f"expected 200 — {_HINT}")


def _why(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed connection, from urllib's nested exceptions."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host name not found"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason}"
    return str(reason)


def _check_sqlite(uri: str, path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"cannot use the sqlite tracking store {uri}: its folder {folder} cannot be created "
            f"({exc.strerror or exc}) — pick a writable location for tracking_uri, or leave it empty for "
            "<output dir>/mlflow.db"
        ) from exc
    problem = None
    if path.exists() and not path.is_file():
        problem = f"{path} exists and is not a file"
    elif not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        # sqlite writes a journal beside the database, so the folder must be writable too, not only the file.
        problem = f"{path if path.exists() else folder} is not writable"
    if problem:
        raise TrackingError(f"cannot use the sqlite tracking store {uri}: {problem} — pick a writable location for "
                            "tracking_uri, or leave it empty for <output dir>/mlflow.db")
    from matta_core.tracking.sqlite_init import initialise_once

    initialise_once(uri, path)
