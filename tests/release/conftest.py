"""Fixtures of the release tests: the real MLflow server, tiny real models, and a clean MLflow state per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from matta_core.release.rows import EvalRows
from tests.mlflow_server import MLflowServer, clean_mlflow_state, mlflow_server  # noqa: F401  (registers the fixtures)
from tests.release.tiny import RUN_STEPS, TinyRun, build_baseline, build_run, load_test_rows


@dataclass
class TinyModels:
    """Three simulated pipeline runs (medium, worse, good), the ce_only baseline, and the shared test rows."""

    runs: dict[str, TinyRun]
    baseline_dir: str
    baseline_record: dict[str, Any]
    rows: EvalRows


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    out = tmp_path_factory.mktemp("release-models")
    rows = load_test_rows()
    runs = {name: build_run(name, steps, out, rows) for name, steps in RUN_STEPS.items()}
    baseline_dir, baseline_record = build_baseline(out, rows)
    return TinyModels(runs, baseline_dir, baseline_record, rows)


@pytest.fixture
def prefix() -> str:
    """A registered-model prefix of its own per test, so tests sharing the server never see each other's models."""
    return f"t{uuid.uuid4().hex[:8]}"



@pytest.fixture(scope="session")
def server_uri(mlflow_server: MLflowServer) -> str:  # noqa: F811  (the fixture registered above)
    """The tracking server the release tests talk to. Session-scoped so module fixtures can use it too;
    tests/stack overrides it with the PostgreSQL + gs:// stack and reruns these tests there."""
    return mlflow_server.uri


@pytest.fixture
def script_dir() -> Path:
    return Path(__file__).parent / "scripts"
