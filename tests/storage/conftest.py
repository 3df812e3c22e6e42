"""Fixtures for the storage tests: the real GCS emulator, and a fresh root URI per backend."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.gcs_emulator import gcs_emulator  # noqa: F401  (registers the session fixture)

#: Streamed GCS uploads use this chunk size in tests, so a few hundred KiB already span several requests.
TEST_STREAM_CHUNK = 256 * 1024

ROOT_KINDS = ["path", "file", "gs"]


@pytest.fixture(params=ROOT_KINDS)
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty storage root: a plain path, a ``file://`` URI, or a fresh bucket on the GCS emulator."""
    kind = request.param
    if kind == "path":
        return str(tmp_path / "root")
    if kind == "file":
        return f"file://{tmp_path / 'root'}"
    # getfixturevalue: only the gs case pays for the emulator, so `-k "not gs"` runs without it.
    emulator = request.getfixturevalue("gcs_emulator")
    from matta_core.storage import gcs

    monkeypatch.setattr(gcs, "STREAM_CHUNK_SIZE", TEST_STREAM_CHUNK)
    return str(emulator.make_bucket(f"test-{uuid.uuid4().hex[:16]}"))


def local_files(root_uri: str) -> list[str]:
    """Every file under a local root, hidden temp files included (for litter checks); [] for gs://."""
    from matta_core.storage import is_local, to_local_path

    if not is_local(root_uri):
        return []
    base = to_local_path(root_uri)
    return sorted(os.path.relpath(os.path.join(d, n), base) for d, _, names in os.walk(base) for n in names)
