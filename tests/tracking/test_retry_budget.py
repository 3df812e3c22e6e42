"""`tracking_retry_seconds`: MLflow's own client gives up on a dead server within the budget, values the user set
in the environment win, and the compiled cluster pipeline hands the budget to every task."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from matta_core.config import PipelineConfig
from matta_core.tracking.outage import outage_reason
from matta_core.tracking.retries import (
    BACKOFF_FACTOR_ENV,
    MAX_RETRIES_ENV,
    RETRY_SECONDS_ENV,
    apply_retry_budget,
    backoff_seconds,
    bounded_retries,
    http_retry_env,
)

MLFLOW_VARS = (MAX_RETRIES_ENV, BACKOFF_FACTOR_ENV, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "MLFLOW_HTTP_REQUEST_TIMEOUT")


@pytest.fixture(autouse=True)
def _no_retry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (*MLFLOW_VARS, RETRY_SECONDS_ENV):
        monkeypatch.delenv(key, raising=False)


def _closed_port_uri() -> str:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_the_default_budget_is_thirty_seconds_of_backoff_and_every_budget_holds() -> None:
    assert http_retry_env(30) == {MAX_RETRIES_ENV: "5", BACKOFF_FACTOR_ENV: "1",
                                  "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    assert backoff_seconds(5, 1) == 30  # waits 0, 2, 4, 8, 16 s
    for budget in (0, 1, 3, 5, 12, 30, 90, 600, 1000):
        env = http_retry_env(budget)
        assert backoff_seconds(int(env[MAX_RETRIES_ENV]), int(env[BACKOFF_FACTOR_ENV])) <= budget, budget
    with pytest.raises(ValueError, match=">= 0 seconds"):
        http_retry_env(-1)


def test_mlflow_gives_up_on_a_dead_server_within_the_budget() -> None:
    client = mlflow.MlflowClient(_closed_port_uri())
    with bounded_retries(5):
        started = time.monotonic()
        with pytest.raises(mlflow.MlflowException) as caught:
            client.get_experiment_by_name("anything")
        took = time.monotonic() - started
    assert 3.5 < took < 10, took  # 2 retries after 0 and 4 s (MLflow's defaults: ~4 minutes)
    assert outage_reason(caught.value) == "connection refused"
    assert all(key not in os.environ for key in MLFLOW_VARS)  # restored after the block


def test_values_set_in_the_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_RETRIES_ENV, "7")
    with bounded_retries(30) as added:
        assert os.environ[MAX_RETRIES_ENV] == "7" and os.environ[BACKOFF_FACTOR_ENV] == "1"
        assert MAX_RETRIES_ENV not in added and os.environ[RETRY_SECONDS_ENV] == "30"
    assert os.environ[MAX_RETRIES_ENV] == "7" and BACKOFF_FACTOR_ENV not in os.environ
    # A cluster task: the budget from its pod, a value from its Secret / ConfigMap kept.
    environ = {RETRY_SECONDS_ENV: "5", "MLFLOW_HTTP_REQUEST_TIMEOUT": "300"}
    assert apply_retry_budget(environ) == {MAX_RETRIES_ENV: "2", BACKOFF_FACTOR_ENV: "2",
                                           "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0"}
    assert environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    assert apply_retry_budget({}) == {}  # no budget given: MLflow's own defaults stay


def test_the_config_setting_is_validated_and_existing_configs_keep_the_default() -> None:
    assert PipelineConfig.parse({}).tracking_retry_seconds == 30
    assert PipelineConfig.parse({"tracking_retry_seconds": 5}).tracking_retry_seconds == 5
    with pytest.raises(Exception, match="tracking_retry_seconds"):
        PipelineConfig.parse({"tracking_retry_seconds": -1})


def test_every_cluster_task_carries_the_budget(tmp_path: Path) -> None:
    from pipelines.cluster import compile_cluster_pipeline

    config = PipelineConfig.parse({
        "name": "matta-budget", "cache_dir": "gs://team-bucket/cache", "tracking_retry_seconds": 12,
        "cluster": {"pipeline_root": "gs://team-bucket/root", "image": "europe-docker.pkg.dev/p/r/matta:0.1.0"},
    })
    path = tmp_path / "pipeline.yaml"
    compile_cluster_pipeline(config, path)
    spec = next(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) >= 7
    for name, executor in executors.items():
        env = {item["name"]: item["value"] for item in executor["container"].get("env", [])}
        assert env.get(RETRY_SECONDS_ENV) == "12", name
