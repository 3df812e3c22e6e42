"""Reports, figures and JSON documents land as run artifacts, on both stores (the server proxies artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from matta_core.tracking import TrackingError, log_figure, log_json, log_report, pipeline_run

# The 8-byte PNG signature: enough for a file the UI treats as an image; the content is not inspected.
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_artifacts_are_logged(tracking_uri: str, experiment_name: str, tmp_path: Path) -> None:
    report, figure = tmp_path / "report.md", tmp_path / "pareto.png"
    report.write_text("# Evaluation\n\naccuracy 0.9\n")
    figure.write_bytes(PNG_BYTES)
    with pipeline_run(tracking_uri, experiment_name, "evaluate") as run:
        assert log_report(report) == "reports/report.md"
        assert log_figure(figure) == "figures/pareto.png"
        assert log_json({"accuracy": np.float32(0.5), "widths": (64, 32), "path": tmp_path}, "summary") == \
            "json/summary.json"

    client = mlflow.MlflowClient(tracking_uri)
    listed = {f.path for folder in ("reports", "figures", "json") for f in client.list_artifacts(run.run_id, folder)}
    assert listed == {"reports/report.md", "figures/pareto.png", "json/summary.json"}
    local = Path(client.download_artifacts(run.run_id, "json/summary.json", str(tmp_path / "dl")))
    assert json.loads(local.read_text()) == {"accuracy": 0.5, "widths": [64, 32], "path": str(tmp_path)}
    png = Path(client.download_artifacts(run.run_id, "figures/pareto.png", str(tmp_path / "dl")))
    assert png.read_bytes() == PNG_BYTES


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing to log"):
        log_report(tmp_path / "missing.md", run_id="unused")


def test_artifacts_need_a_run() -> None:
    with pytest.raises(TrackingError, match="no active MLflow run"):
        log_json({"a": 1}, "x")
