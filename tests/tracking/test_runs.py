"""The run tree: one parent per pipeline run, nested step runs (in-process and from another process), on both stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from matta_core.tracking import (
    TrackingError,
    log_metrics,
    log_params_flat,
    pipeline_run,
    set_lineage_tags,
    step_run,
)
from matta_core.tracking import tags as T
from matta_core.tracking.runs import TRUNCATION_MARK, flatten


def test_run_tree_across_processes(tracking_uri: str, experiment_name: str, script_dir: Path, tmp_path: Path) -> None:
    with pipeline_run(tracking_uri, experiment_name, "pipeline-1", tags={T.PIPELINE: "train"}) as parent:
        log_params_flat({"model": {"hidden_widths": (16,), "embed_dim": 8}, "lr": 0.01})
        with step_run(parent.run_id, "prepare", tracking_uri=tracking_uri) as prepare:
            log_metrics({"rows": 100, "quarantined": 2})
        # Another process, as a KFP step would be: it gets the store from MLFLOW_TRACKING_URI and the parent by id.
        done = subprocess.run([sys.executable, str(script_dir / "child_step.py"), parent.run_id, "train"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        train_id = done.stdout.strip().splitlines()[-1]

    client = mlflow.MlflowClient(tracking_uri)
    top = client.get_run(parent.run_id)
    assert top.info.status == "FINISHED"
    assert top.data.params == {"model.hidden_widths": "[16]", "model.embed_dim": "8", "lr": "0.01"}
    assert top.data.tags[T.RUN_KIND] == "pipeline" and top.data.tags[T.PIPELINE] == "train"

    children = client.search_runs([parent.experiment_id], f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert sorted(run.info.run_name for run in children) == ["prepare", "train"]
    assert {run.info.run_id for run in children} == {prepare.run_id, train_id}

    train = client.get_run(train_id)
    assert train.info.experiment_id == parent.experiment_id  # not the Default experiment
    assert train.info.status == "FINISHED"
    assert train.data.tags[T.STEP] == "train" and train.data.tags[T.RUN_KIND] == "step"
    assert train.data.params == {"train.steps": "3", "train.lr": "0.1", "widths": "[16, 8]"}
    assert [(m.step, m.value) for m in client.get_metric_history(train_id, "loss")] == [
        (1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))
    ]
    assert {k: v for k, v in train.data.tags.items() if k.startswith("matta.")} == {
        T.RUN_KIND: "step", T.STEP: "train", T.DATA_CONTENT_HASH: "data-hash-1",
        T.TEACHER_CACHE_KEY: "teacher-key-2", T.CODE_VERSION: "code-3", T.MODEL_WIDTHS: "16,8",
    }
    assert client.get_run(prepare.run_id).data.metrics == {"rows": 100.0, "quarantined": 2.0}


def test_failed_pipeline_marks_the_runs_failed(sqlite_uri: str, experiment_name: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), \
            pipeline_run(sqlite_uri, experiment_name, "broken") as parent, \
            step_run(parent.run_id, "train") as child:
        raise RuntimeError("boom")
    client = mlflow.MlflowClient(sqlite_uri)
    assert client.get_run(parent.run_id).info.status == "FAILED"
    assert client.get_run(child.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_pipeline_run_restores_the_tracking_uri(sqlite_uri: str, experiment_name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////somewhere/else.db")
    with pipeline_run(sqlite_uri, experiment_name, "p"):
        assert mlflow.get_tracking_uri() == sqlite_uri
    assert mlflow.get_tracking_uri() == "sqlite:////somewhere/else.db"


def test_embedded_store_keeps_artifacts_beside_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pipeline_run(None, "exp", "p", output_dir=tmp_path / "out") as parent:
        pass
    assert parent.tracking_uri == f"sqlite:///{tmp_path}/out/mlflow.db"
    experiment = mlflow.MlflowClient(parent.tracking_uri).get_experiment(parent.experiment_id)
    assert experiment.artifact_location == (tmp_path / "out" / "mlartifacts").as_uri()
    assert not (tmp_path / "mlruns").exists()


def test_step_with_an_unknown_parent_says_what_to_pass(sqlite_uri: str) -> None:
    with pytest.raises(TrackingError, match=r"parent run '0+' not found .* pass the pipeline run's tracking_uri"), \
            step_run("0" * 32, "train", tracking_uri=sqlite_uri):
        pass


def test_params_are_flattened_and_truncated(sqlite_uri: str, experiment_name: str) -> None:
    long_value = "x" * 7000
    with pipeline_run(sqlite_uri, experiment_name, "p") as parent:
        logged = log_params_flat({"a": {"b": {"c": 1}, "empty": {}}, "long": long_value, "none": None})
    assert logged["a.b.c"] == "1" and logged["a.empty"] == "{}" and logged["none"] == "None"
    assert len(logged["long"]) == 6000 and logged["long"].endswith(TRUNCATION_MARK)
    assert mlflow.MlflowClient(sqlite_uri).get_run(parent.run_id).data.params == logged


def test_too_long_param_names_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="MLflow allows 250"):
        log_params_flat({"k" * 300: 1}, run_id="unused")


def test_lineage_tags_skip_missing_values_and_refuse_undocumented_ones(sqlite_uri: str, experiment_name: str) -> None:
    with pipeline_run(sqlite_uri, experiment_name, "p"):
        tags = set_lineage_tags("hash", None, "v1", extra={T.TRAIN_START_STEP: 0})
        assert tags == {T.DATA_CONTENT_HASH: "hash", T.CODE_VERSION: "v1", T.TRAIN_START_STEP: "0"}
        with pytest.raises(ValueError, match="not a documented matta tag"):
            set_lineage_tags("hash", None, None, extra={"matta.made_up": "x"})


def test_logging_needs_a_run() -> None:
    with pytest.raises(TrackingError, match="no active MLflow run"):
        log_metrics({"x": 1.0})


def test_flatten_keeps_lists_readable() -> None:
    assert flatten({"w": [64, 32], "t": ("a", "b"), "n": {"x": {"y": 2.5}}}) == {
        "w": "[64, 32]", "t": "[a, b]", "n.x.y": "2.5"
    }
