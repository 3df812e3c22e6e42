"""Fixtures of the stack tests: one production-like stack per session (PostgreSQL, the GCS emulator, MLflow on
both), offered as ``server_uri`` so the release tests that take it run here unchanged."""

from __future__ import annotations

import pytest

from matta_core.tracking.production_stack import ProductionStack
from tests.mlflow_server import clean_mlflow_state  # noqa: F401  (registers the autouse fixture)
from tests.production_stack import production_stack  # noqa: F401  (registers the session fixture)
from tests.release.conftest import prefix, script_dir, tiny_models  # noqa: F401  (the release tests' fixtures)


@pytest.fixture(scope="session")
def server_uri(production_stack: ProductionStack) -> str:  # noqa: F811  (the fixture registered above)
    """The release tests' server, here the stack's MLflow server: runs in PostgreSQL, artifacts on gs://."""
    return production_stack.tracking_uri
