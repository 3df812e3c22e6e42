"""Tracking owned by the pipeline, as on a cluster: no parent run passed in, the MLflow URI in the environment (on
a cluster: from the MLflow Secret). Each run of the same compiled pipeline with the same parameters, as a recurring
run starts it, opens its own parent run keyed on its KFP run id, registers under that id, and ends FINISHED; a
retried first task finds the run it opened instead of opening a second."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest
from kfp import local
from mlflow.entities import RunStatus

from matta_core.config import PipelineConfig
from matta_core.release import tags as RT
from matta_core.tracking import tags as T
from matta_core.tracking.kfp_parent import close_parent_run, find_parent_run, open_parent_run
from pipelines.code_version import code_version
from pipelines.kfp_local_loops import loop_inputs_kept
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


@pytest.mark.slow
def test_every_recurring_run_is_tracked_and_releases_on_its_own(
    tmp_path: Path, teacher_cache: Path, mlflow_server: MLflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"own{uuid.uuid4().hex[:6]}"
    name = f"matta-owned-{prefix}"
    config = PipelineConfig.parse(small_config(
        tmp_path, teacher_cache, name=name, widths=[[96], [32]], release={**SMALL_RELEASE, "model_prefix": prefix}))
    arguments = pipeline_arguments(config)  # what a recurring run passes, every night the same
    assert arguments["tracking_uri"] == "" and arguments["parent_run_id"] == ""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)  # the Secret's key, in every task's environment
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    pipeline = build_pipeline(code_version())
    releases = []
    with loop_inputs_kept():
        for _ in range(2):
            outputs = pipeline(**arguments).outputs
            releases.append(json.loads((Path(outputs["release"].path) / "release.json").read_text()))

    client = mlflow.MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name(name)
    parents = client.search_runs([experiment.experiment_id],
                                 filter_string=f"tags.`{T.RUN_KIND}` = '{T.RUN_KIND_PIPELINE}'")
    assert len(parents) == 2
    assert len({p.data.tags[T.KFP_RUN_ID] for p in parents}) == 2  # one parent per KFP run
    assert all(p.info.status == "FINISHED" for p in parents)  # ended by the pipeline's last task
    assert all(p.data.tags[T.CODE_VERSION] == code_version() and T.DATA_VERSION in p.data.tags for p in parents)
    assert {p.data.params["train.epochs"] for p in parents} == {"4.0"}
    parent_ids = {p.info.run_id for p in parents}
    for parent_id in parent_ids:
        children = client.search_runs([experiment.experiment_id],
                                      filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
        assert {"prepare", "teacher", "train", "report", "release"} <= {c.info.run_name for c in children}

    # Each run's release is keyed on its own parent run: the first registers, the second is not a "retry" of it.
    assert [r["status"] for r in releases] == ["gated", "gated"]
    assert {r["pipeline_run_id"] for r in releases} == parent_ids
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
