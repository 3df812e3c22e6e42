"""Fixtures for the data tests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.data.helpers import banking_rows
from tests.gcs_emulator import gcs_emulator  # noqa: F401  (registers the session fixture)


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the variables that redirect dataset fetching, so each test sees only its own arguments."""
    for name in ("MATTA_DATA_MIRROR", "MATTA_CACHE_DIR", "MATTA_DATASET_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sample_rows() -> list[dict[str, str]]:
    """40 real Banking77 rows over many intents, single-line texts, all distinct."""
    rows = [r for r in banking_rows() if "\n" not in r["text"]]
    picked = rows[::97][:40]
    assert len({r["text"] for r in picked}) == 40
    return picked


@pytest.fixture
def bucket(gcs_emulator: Any) -> str:  # noqa: F811
    """A fresh gs:// bucket on the emulator."""
    return str(gcs_emulator.make_bucket(f"data-{uuid.uuid4().hex[:12]}"))
