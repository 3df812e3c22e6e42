"""tests/release/test_concurrency.py against PostgreSQL: the same tests (imported, not copied), with ``server_uri``
the stack's MLflow server, and then a look into PostgreSQL and the bucket: nothing duplicated, nothing lost."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from matta_core.release import tags as RT
from matta_core.release.lock import lock_name
from matta_core.release.registry import ensure_registered_model
from matta_core.tracking.production_stack import ProductionStack
from tests.production_stack import bucket_objects, postgres_rows
from tests.release.test_concurrency import (  # noqa: F401  (collected here: the same tests on this server)
    run_workers,
    source_uri,
    test_duplicate_left_by_a_crashed_racer_is_resolved_to_the_lowest_version,
    test_expired_lock_of_a_crashed_holder_is_broken,
    test_held_lock_times_out_naming_the_holder,
    test_lock_model_name_is_create_only,
    test_parallel_registrations_and_promotions_end_in_a_serial_state,
    test_retry_of_registration_returns_the_same_version,
)

pytestmark = pytest.mark.slow


def test_racing_registrations_leave_one_row_per_run_in_postgres(
    production_stack: ProductionStack, server_uri: str, source_uri: str, script_dir: Path, tmp_path: Path  # noqa: F811
) -> None:
    """Four processes register three runs at once; PostgreSQL's own tables then hold exactly one version per run,
    one challenger alias, no lock row, and the model's files are in the emulator bucket."""
    client = MlflowClient(server_uri)
    name = f"pg{uuid.uuid4().hex[:8]}"
    ensure_registered_model(client, name)
    base = {"tracking_uri": server_uri, "model": name, "action": "register", "source": source_uri}
    runs = ["run-A", "run-A", "run-B", "run-C"]
    answers = run_workers(script_dir / "race_worker.py", [{**base, "pipeline_run_id": r} for r in runs], tmp_path)

    # MLflow deletes a version by marking it Deleted_Internal: the live rows are the ones that count. A duplicate
    # that two racers created for one run may have existed for a moment; the dedupe must have deleted it.
    rows = postgres_rows(production_stack, "SELECT v.version, t.value, v.current_stage <> 'Deleted_Internal' FROM "
                         "model_versions v JOIN model_version_tags t ON t.name = v.name AND t.version = v.version "
                         "WHERE v.name = %s AND t.key = %s", (name, RT.PIPELINE_RUN_ID))
    live = {str(version): run for version, run, alive in rows if alive}
    assert sorted(live.values()) == ["run-A", "run-B", "run-C"], rows
    assert all(run == "run-A" for _, run, alive in rows if not alive), rows  # only the racing retries collided
    assert {a["version"] for a in answers} == set(live)  # every process was answered with a live version
    aliases = postgres_rows(production_stack, "SELECT alias, version FROM registered_model_aliases WHERE name = %s",
                            (name,))
    assert aliases == [("challenger", max(int(v) for v in live))]
    assert not postgres_rows(production_stack, "SELECT name FROM registered_models WHERE name = %s",
                             (lock_name(name),)), "lock left behind"
    # The versions point at the logged model, whose files the server wrote to gs://<bucket>/mlflow.
    model_id = source_uri.removeprefix("models:/")
    files = bucket_objects(production_stack, "mlflow/")
    assert any(f"/models/{model_id}/artifacts/MLmodel" in path for path in files), files[:20]


def test_runs_and_their_artifacts_are_in_postgres_and_the_bucket(production_stack: ProductionStack,
                                                                 server_uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(server_uri)
    mlflow.set_experiment(f"pg-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.75)
        mlflow.log_text("kept", "notes/kept.txt")
    assert postgres_rows(production_stack, "SELECT status FROM runs WHERE run_uuid = %s",
                         (run.info.run_id,)) == [("FINISHED",)]
    assert postgres_rows(production_stack, "SELECT value FROM metrics WHERE run_uuid = %s AND key = 'accuracy'",
                         (run.info.run_id,)) == [(0.75,)]
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # served by the server ...
    [path] = bucket_objects(production_stack, f"mlflow/{run.info.experiment_id}/{run.info.run_id}/")
    assert path.endswith("artifacts/notes/kept.txt")  # ... which wrote it to the bucket
