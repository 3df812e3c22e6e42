"""tests/release/test_release_flow.py against PostgreSQL and gs:// artifacts: the same scenario and checks
(imported, not copied; ``server_uri`` is the stack's MLflow server) - release, promote, rollback, a retried release
that creates no duplicate - then the registry's rows read from PostgreSQL directly."""

from __future__ import annotations

from collections import Counter

import pytest

from matta_core.release import tags as RT
from matta_core.tracking.production_stack import ProductionStack
from tests.production_stack import bucket_objects, postgres_rows
from tests.release.test_release_flow import (  # noqa: F401  (collected here: the same tests on this server)
    CLASSES,
    Scenario,
    scenario,
    test_better_run_becomes_challenger_with_a_valid_handoff,
    test_cli_refuses_rollback_without_previous_and_reserved_aliases,
    test_first_run_registers_challengers_against_the_baseline,
    test_models_list_shows_each_class,
    test_promote_then_rollback_move_aliases,
    test_registered_version_carries_lineage_metrics_and_gate_evidence,
    test_retried_release_creates_no_duplicate_version,
    test_worse_run_is_rejected_and_registers_nothing,
)

pytestmark = pytest.mark.slow


def test_postgres_holds_one_version_per_pipeline_run_and_unique_aliases(
    scenario: Scenario, production_stack: ProductionStack  # noqa: F811
) -> None:
    for size_class in CLASSES:
        name = scenario.name(size_class)
        runs = postgres_rows(production_stack, "SELECT t.value FROM model_version_tags t JOIN model_versions v ON "
                             "v.name = t.name AND v.version = t.version WHERE t.name = %s AND t.key = %s AND "
                             "v.current_stage <> 'Deleted_Internal'", (name, RT.PIPELINE_RUN_ID))
        assert Counter(run for (run,) in runs) == {"kfp-run-1": 1, "kfp-run-3": 1}, (name, runs)
        aliases = postgres_rows(production_stack, "SELECT alias, version FROM registered_model_aliases WHERE "
                                "name = %s ORDER BY alias", (name,))
        assert aliases == sorted((alias, int(v)) for alias, v in scenario.aliases["rolled_back"][size_class].items())
    # The gate decisions document of every release run is an object in the bucket, not a local file.
    decisions = [path for path in bucket_objects(production_stack, "mlflow/")
                 if path.endswith("/artifacts/release/gate_decisions.json")]
    assert len(decisions) >= 3, decisions  # first, worse and better (the retry logs its own too)
