"""A real GCS emulator for tests: the ``gcs_emulator`` session fixture.

Starts ``gcp-storage-emulator`` (the HTTP server from the dev extras, not a mock) on a free port with in-memory
storage (the library's `matta_core.tracking.gcs_emulator`), points ``STORAGE_EMULATOR_HOST`` at it for the whole
session, and stops it at the end.

Register it from a ``conftest.py``::

    from tests.gcs_emulator import gcs_emulator  # noqa: F401

then use ``gcs_emulator.make_bucket("name")`` to get a ``gs://name`` root. The emulator ignores generation
preconditions (``if_generation_match``), so create-only behaviour must be tested through the storage layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from matta_core.tracking.gcs_emulator import EMULATOR_ENV, GCSEmulator, stop_emulator
from matta_core.tracking.gcs_emulator import start_emulator as _start

__all__ = ["EMULATOR_ENV", "GCSEmulator", "gcs_emulator", "start_emulator"]


def start_emulator(log_path: Path) -> GCSEmulator:
    """Start an in-memory emulator on a free port and wait until it answers."""
    return _start(log_path)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSEmulator]:
    """A running GCS emulator for the whole session, with ``STORAGE_EMULATOR_HOST`` pointing at it."""
    emulator = start_emulator(tmp_path_factory.mktemp("gcs-emulator") / "emulator.log")
    # MonkeyPatch.context: the session-scoped twin of the monkeypatch fixture; restores the env on exit.
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(EMULATOR_ENV, emulator.host)
            yield emulator
    finally:
        stop_emulator(emulator.process)
