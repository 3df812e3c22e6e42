"""Fixtures for the pipeline tests: a real MLflow server, a Teacher cache shared by the session, clean state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mlflow_server import clean_mlflow_state, mlflow_server  # noqa: F401  (registers the fixtures)


@pytest.fixture(scope="session")
def teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Teacher cache for the session: the first pipeline test pays for MiniLM, the others read the cache."""
    return tmp_path_factory.mktemp("teacher-cache")

