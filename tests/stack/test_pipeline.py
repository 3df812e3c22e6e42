"""The whole pipeline (kfp.local, the small Banking77 config of tests/kfp) tracked on the production-like stack:
runs and the registry in PostgreSQL, artifacts and models in the emulator's gs:// bucket. The release part is
checked by the same function as on the sqlite server (tests/kfp/test_pipeline_run.check_release)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest

from matta_core.config import PipelineConfig
from matta_core.families.classifier.inputs import load_inputs
from matta_core.tracking import tags as T
from matta_core.tracking.production_stack import ProductionStack
from pipelines.local_runner import run_pipeline
from tests.kfp.helpers import SMALL_RELEASE, small_config
from tests.kfp.test_pipeline_run import MODELS, RELEASED, STEP_RUNS, check_release
from tests.production_stack import bucket_objects, postgres_rows


@pytest.mark.slow
def test_pipeline_tracks_runs_in_postgres_and_artifacts_in_the_bucket(
    tmp_path: Path, production_stack: ProductionStack
) -> None:
    uri, prefix = production_stack.tracking_uri, f"stack{uuid.uuid4().hex[:6]}"
    # The small config of tests/kfp (the real MiniLM Teacher), with half its rows and epochs: what is under test
    # here is where the records land, not what the models learn; the size classes and gate outcomes hold.
    base = small_config(tmp_path, tmp_path / "teacher-cache")
    config = PipelineConfig.parse({
        **base, "tracking_uri": uri, "release": {**SMALL_RELEASE, "model_prefix": prefix},
        "data": {**base["data"], "limit_train_rows": 600, "limit_test_rows": 200},
        "train": {**base["train"], "epochs": 2}})
    result = run_pipeline(config)

    client = mlflow.MlflowClient(uri)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[T.RUN_KIND] == "pipeline"
    children = client.search_runs([result.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    steps = {run.info.run_name: run for run in children}
    assert set(steps) == STEP_RUNS and all(run.info.status == "FINISHED" for run in children)

    # What MLflow answered is what PostgreSQL holds: every step run once, finished.
    rows = postgres_rows(production_stack, "SELECT r.name, r.status FROM runs r JOIN tags t ON t.run_uuid = "
                         "r.run_uuid WHERE t.key = 'mlflow.parentRunId' AND t.value = %s", (result.run_id,))
    assert sorted(rows) == sorted((name, "FINISHED") for name in STEP_RUNS)

    # The report's figure and every evaluated model are objects in the bucket, under the experiment's folder.
    objects = bucket_objects(production_stack, f"mlflow/{result.experiment_id}/")
    assert f"mlflow/{result.experiment_id}/{result.run_id}/artifacts/figures/pareto.png" in objects
    mlflow.set_tracking_uri(uri)
    logged = mlflow.search_logged_models(experiment_ids=[result.experiment_id], output_format="list")
    assert {m.name for m in logged} == MODELS | {f"{c}-{w}" for c, w in RELEASED.items()}
    for model in logged:
        assert f"mlflow/{result.experiment_id}/models/{model.model_id}/artifacts/MLmodel" in objects, model.name

    # The release: gate, challengers registered with lineage, handoffs - checked as on the sqlite server.
    [run_dir] = list(result.pipeline_root.glob("matta-*"))
    [prepared] = list(run_dir.glob("prepare-data/prepared"))
    texts = load_inputs(str(prepared), config.data).splits["test"].texts[:8]
    records = {r["name"]: r for r in _report(result.report_dir)["models"]}
    check_release(result, prefix, steps["release"], steps["prepare"].data.tags[T.DATA_CONTENT_HASH],
                  steps["teacher"].data.tags[T.TEACHER_CACHE_KEY], texts, records)


def _report(report_dir: Path) -> dict:
    return json.loads((report_dir / "report.json").read_text())
