"""Tracking owned by the pipeline, as on a cluster: no parent run passed in, the MLflow URI in the environment (on
a cluster: from the MLflow Secret). Each run of the same compiled pipeline with the same parameters, as a recurring
run starts it, opens its own parent run keyed on its KFP run id, registers under that id, and ends FINISHED; a
retried first task finds the run it opened instead of opening a second."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import mlflow
import pytest
from kfp import local
from mlflow.entities import RunStatus

from matta_core.cluster.run_identity import KFP_RUN_ID_ENV
from matta_core.config import PipelineConfig
from matta_core.release import tags as RT
from matta_core.tracking import tags as T
from matta_core.tracking.kfp_parent import close_parent_run, find_parent_run, open_parent_run
from pipelines.code_version import code_version
from pipelines.matta_pipeline import build_pipeline, pipeline_arguments
from tests.kfp.helpers import SMALL_RELEASE, small_config
from tests.mlflow_server import MLflowServer


def test_a_retried_first_task_finds_the_parent_it_opened(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = open_parent_run(uri, "nightly", "kfp-run-1", kfp_run_name="nightly-1", params={"train": {"lr": 0.1}})
    assert open_parent_run(uri, "nightly", "kfp-run-1") == first  # the retry
    second = open_parent_run(uri, "nightly", "kfp-run-2")
    assert second != first and find_parent_run(uri, "nightly", "kfp-run-2") == second
    assert find_parent_run(uri, "nightly", "kfp-run-3") is None
    run = mlflow.MlflowClient(uri).get_run(first)
    assert run.data.tags[T.KFP_RUN_ID] == "kfp-run-1" and run.data.tags[T.RUN_KIND] == T.RUN_KIND_PIPELINE
    assert run.data.params == {"train.lr": "0.1"}  # logged once, by the attempt that created it
    assert close_parent_run(uri, first, "SUCCEEDED") == "FINISHED"
    assert close_parent_run(uri, second, "FAILED") == "FAILED"
    assert mlflow.MlflowClient(uri).get_run(first).info.status == RunStatus.to_string(RunStatus.FINISHED)


def _parents(client: mlflow.MlflowClient, name: str) -> list:
    experiment = client.get_experiment_by_name(name)
    return sorted(client.search_runs([experiment.experiment_id],
                                     filter_string=f"tags.`{T.RUN_KIND}` = '{T.RUN_KIND_PIPELINE}'"),
                  key=lambda r: r.info.start_time)


def _children(client: mlflow.MlflowClient, parent: Any) -> set[str]:
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {c.info.run_name for c in runs}


@pytest.mark.slow
def test_every_recurring_run_is_tracked_releases_on_its_own_and_reuses_the_cache(
    tmp_path: Path, teacher_cache: Path, mlflow_server: MLflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"own{uuid.uuid4().hex[:6]}"
    name = f"matta-owned-{prefix}"
    config = PipelineConfig.parse(small_config(
        tmp_path, teacher_cache, name=name, widths=[[96], [32]], release={**SMALL_RELEASE, "model_prefix": prefix}))
    arguments = pipeline_arguments(config)  # what a recurring run passes, every night the same
    assert arguments["tracking_uri"] == "" and arguments["parent_run_id"] == ""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)  # the Secret's key, in every task's environment
    root = tmp_path / "root"
    # Caching on, as on a cluster: the second run reuses every step that only computes.
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True,
               enable_caching=True)
    pipeline = build_pipeline(code_version())
    releases, run_dirs, run_ids = [], [], []
    for night in range(2):
        # What KFP puts in every task pod of a run (the pod label pipeline/runid, mapped into the environment).
        run_ids.append(f"night-{night}-{uuid.uuid4().hex[:8]}")
        monkeypatch.setenv(KFP_RUN_ID_ENV, run_ids[-1])
        before = set(root.glob("matta-*"))
        pipeline(**arguments)
        [run_dir] = set(root.glob("matta-*")) - before
        run_dirs.append(run_dir)
        releases.append(json.loads((run_dir / "release-models" / "release" / "release.json").read_text()))

    # The second night computed nothing the first had: its prepare, Teacher, train and evaluation came from the cache.
    first_tasks, second_tasks = ({p.name for p in d.iterdir()} for d in run_dirs)
    assert {"prepare-data", "cache-teacher-outputs", "train-models", "extract-and-evaluate"} <= first_tasks
    assert second_tasks == {"start-run", "write-report", "release-models", "end-run"}

    client = mlflow.MlflowClient(mlflow_server.uri)
    parents = _parents(client, name)
    assert len(parents) == 2
    assert len({p.data.tags[T.KFP_RUN_ID] for p in parents}) == 2  # one parent per KFP run
    assert [p.data.tags[T.RUN_KEY] for p in parents] == [f"kfp:{i}" for i in run_ids]
    assert all(p.info.status == "FINISHED" for p in parents)  # ended by the pipeline's exit task
    assert all(p.data.tags[T.CODE_VERSION] == code_version() and T.DATA_VERSION in p.data.tags for p in parents)
    assert {p.data.params["train.epochs"] for p in parents} == {"4.0"}
    # Each step ran found its own run's parent without being handed its id; cached steps stay with the run that
    # computed them, and every run gets its own report (never cached) and release.
    first_children, second_children = (_children(client, p) for p in parents)
    assert {"prepare", "teacher", "train", "extract-96", "evaluate-96", "report", "release"} <= first_children
    assert second_children == {"report", "release"}
    assert all("accuracy/96" in p.data.metrics for p in parents)

    # Each run's release is keyed on its own parent run: the first registers, the second is not a "retry" of it.
    assert [r["status"] for r in releases] == ["gated", "gated"]
    assert [r["pipeline_run_id"] for r in releases] == [p.info.run_id for p in parents]
    first, second = releases
    passed = {c: d for c, d in first["classes"].items() if d["passed"]}
    assert passed, first
    for size_class, decision in passed.items():
        version = client.get_model_version(decision["registered_model"], decision["version"])
        assert version.tags[RT.PIPELINE_RUN_ID] == first["pipeline_run_id"]
        again = second["classes"][size_class]
        if again["passed"]:  # a second version, registered under the second run
            assert int(again["version"]) == int(decision["version"]) + 1
            version = client.get_model_version(again["registered_model"], again["version"])
            assert version.tags[RT.PIPELINE_RUN_ID] == second["pipeline_run_id"]
        else:
            assert again["failed_checks"], again

    # A run whose step fails: the exit task still runs and ends the parent run FAILED (not RUNNING forever).
    monkeypatch.setenv(KFP_RUN_ID_ENV, f"failing-{uuid.uuid4().hex[:8]}")
    broken = {**arguments, "teacher_json": json.dumps({"kind": "no-such-teacher"})}
    with pytest.raises(RuntimeError, match="cache-teacher-outputs"):
        pipeline(**broken)
    failed = _parents(client, name)[-1]
    assert failed.info.run_id not in {p.info.run_id for p in parents}
    assert failed.info.status == "FAILED" and failed.info.end_time is not None
