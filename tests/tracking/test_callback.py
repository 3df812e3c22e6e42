"""MLflowMetricsCallback: step metrics reach MLflow, in few requests, cheaply enough for a 15 ms training step."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest

from matta_core.tracking import MLflowMetricsCallback, TrackingError, pipeline_run
from matta_core.tracking import tags as T


def test_callback_logs_step_metrics_in_batches(tracking_uri: str, experiment_name: str, tmp_path: Path) -> None:
    steps = 300
    with pipeline_run(tracking_uri, experiment_name, "train") as run:
        callback = MLflowMetricsCallback(run.run_id, every=10, tracking_uri=tracking_uri, flush_every_s=3600)
        callback.on_train_start(None, None, 0)
        spent = 0.0
        for step in range(1, steps + 1):
            metrics = {"total": 1.0 / step, "kd": 0.5 / step, "lr": 0.01}
            if step == 155:
                metrics["val/accuracy"] = 0.75  # off the every=10 grid: logged all the same
            started = time.perf_counter()
            callback.on_step_end(step, metrics)
            spent += time.perf_counter() - started
            if step == 150:
                callback.on_checkpoint(step, tmp_path / "ckpt-150")
        callback.on_train_end(SimpleNamespace(steps=steps, final_loss={"total": 0.003}, wall_seconds=4.5))

    client = mlflow.MlflowClient(tracking_uri)
    history = client.get_metric_history(run.run_id, "total")
    assert [m.step for m in history] == list(range(10, steps + 1, 10))
    assert history[-1].value == pytest.approx(1.0 / steps)
    assert [(m.step, m.value) for m in client.get_metric_history(run.run_id, "val/accuracy")] == [(155, 0.75)]
    data = client.get_run(run.run_id).data
    assert data.metrics["final/total"] == pytest.approx(0.003) and data.metrics["train_wall_seconds"] == 4.5
    assert data.tags[T.TRAIN_START_STEP] == "0" and data.tags[T.TRAIN_CHECKPOINT] == str(tmp_path / "ckpt-150")
    # 91 metrics logged in 2 requests (checkpoint, end), instead of 91 or 30.
    assert callback.requests == 2
    # Buffering costs microseconds per step; 1 ms is a bound loose enough for a loaded 2-core machine.
    assert spent / steps < 1e-3


def test_periodic_flush(sqlite_uri: str, experiment_name: str) -> None:
    with pipeline_run(sqlite_uri, experiment_name, "train") as run:
        callback = MLflowMetricsCallback(run.run_id, flush_every_s=0.0)  # due at every step
        for step in (1, 2, 3):
            callback.on_step_end(step, {"total": float(step)})
        assert callback.requests == 3
        history = mlflow.MlflowClient(sqlite_uri).get_metric_history(run.run_id, "total")
        assert [m.value for m in history] == [1.0, 2.0, 3.0]


def test_final_flush_failure_raises(sqlite_uri: str) -> None:
    callback = MLflowMetricsCallback("0" * 32, tracking_uri=sqlite_uri, flush_every_s=3600)
    callback.on_step_end(1, {"total": 1.0})
    with pytest.raises(TrackingError, match=r"could not log 1 metrics to MLflow run 0+"):
        callback.on_train_end(None)


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every must be >= 1"):
        MLflowMetricsCallback("run", every=0, tracking_uri="http://unused:1")


def test_with_the_real_trainer(sqlite_uri: str, experiment_name: str) -> None:
    """The trainer's own calls (positional and keyword) fit the callback."""
    pytest.importorskip("matta_core.training")
    from matta_core.families.classifier.trainer import train
    from tests.training.train_tiny import tiny_data, tiny_model_config, tiny_train_config

    with pipeline_run(sqlite_uri, experiment_name, "train") as run:
        callback = MLflowMetricsCallback(run.run_id, every=5, tracking_uri=sqlite_uri)
        _, result = train(tiny_model_config(), tiny_data(rows=64), tiny_train_config(steps=10), callbacks=[callback])
    client = mlflow.MlflowClient(sqlite_uri)
    assert [m.step for m in client.get_metric_history(run.run_id, "total")] == [5, 10]
    assert client.get_run(run.run_id).data.metrics["final/total"] == pytest.approx(result.final_loss["total"])
