"""Fixtures for the fault tests: a Teacher cache shared by the session (the first test pays for MiniLM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mlflow_server import clean_mlflow_state, mlflow_server  # noqa: F401  (registers the fixtures)


@pytest.fixture(scope="session")
def teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("teacher-cache")
