"""Fixtures for the tracking tests: a real MLflow server and an embedded sqlite store, one of each per session."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from matta_core.tracking import resolve_tracking_uri
from tests.mlflow_server import MLflowServer, clean_mlflow_state, mlflow_server  # noqa: F401  (registers the fixtures)

BACKENDS = ["sqlite", "server"]


@pytest.fixture(scope="session")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded store (``sqlite:////.../mlflow.db``), shared by the session: each test uses its own experiment."""
    return resolve_tracking_uri(None, output_dir=tmp_path_factory.mktemp("mlflow-sqlite"))


@pytest.fixture(params=BACKENDS)
def tracking_uri(request: pytest.FixtureRequest, sqlite_uri: str) -> str:
    """Each test that takes this runs twice: on the embedded sqlite store and on the real server."""
    if request.param == "sqlite":
        return sqlite_uri
    server: MLflowServer = request.getfixturevalue("mlflow_server")
    return server.uri


@pytest.fixture
def experiment_name(request: pytest.FixtureRequest) -> str:
    """A fresh experiment name per test, so tests sharing a store never see each other's runs."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"



@pytest.fixture
def script_dir() -> Path:
    """Where the helper scripts that tests run in fresh processes live."""
    return Path(__file__).parent / "scripts"
