"""One lazily created ``google.cloud.storage.Client`` per process.

Creating a client resolves credentials and builds an HTTP session (tens of milliseconds, sometimes a metadata
server round trip), so it is made once and shared by all threads, as the library's own transfer manager does.
When ``STORAGE_EMULATOR_HOST`` is set the client talks to the emulator with anonymous credentials.
"""

from __future__ import annotations

import os
import threading

from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage

from matta_core.storage.errors import StorageError

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
_lock = threading.Lock()
# Keyed by the emulator host so a test that points the env var elsewhere gets a matching client.
_clients: dict[str | None, storage.Client] = {}


def get_client() -> storage.Client:
    """Return this process's client for the current ``STORAGE_EMULATOR_HOST`` (or real GCS if unset)."""
    key = os.environ.get(EMULATOR_ENV) or None
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = _make_client(key)
    return client


def _make_client(emulator_host: str | None) -> storage.Client:
    if emulator_host:
        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "test")
        return storage.Client(project=project, credentials=AnonymousCredentials())
    try:
        return storage.Client()
    except GoogleAuthError as exc:
        raise StorageError(
            f"Cannot create a GCS client: {exc}. Set up Application Default Credentials "
            f"(GOOGLE_APPLICATION_CREDENTIALS or workload identity), or set {EMULATOR_ENV} for the emulator"
        ) from exc


def _reset_after_fork() -> None:
    # A forked child must not reuse the parent's HTTP connections, nor a lock another parent thread held.
    global _lock
    _lock = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_reset_after_fork)
