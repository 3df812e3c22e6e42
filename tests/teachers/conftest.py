"""Fixtures for Teacher and teacher-cache tests: tiny real Teachers, cache roots on disk and on the GCS emulator."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.gcs_emulator import gcs_emulator  # noqa: F401  (registers the session fixture)
from tests.teachers.helpers import CountingTeacher, tiny_classifier


@pytest.fixture(params=["local", "gs"])
def cache_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty cache root: a local folder, or a fresh bucket on the real GCS emulator."""
    if request.param == "local":
        return str(tmp_path / "cache")
    emulator = request.getfixturevalue("gcs_emulator")  # only gs cases pay for the emulator
    return f"{emulator.make_bucket(f'cache-{uuid.uuid4().hex[:12]}')}/teacher-cache"


@pytest.fixture
def counting_teacher() -> CountingTeacher:
    """A tiny real classifier (hashed n-grams -> MLP), wrapped to count and record its predict calls."""
    return CountingTeacher(tiny_classifier(seed=0))
