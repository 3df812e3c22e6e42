"""Reports, figures and JSON documents as artifacts of an MLflow run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow

from matta_core.tracking.runs import resolve_run_id

REPORTS_DIR = "reports"
FIGURES_DIR = "figures"
JSON_DIR = "json"


def log_report(path: str | Path, *, artifact_dir: str = REPORTS_DIR, run_id: str | None = None) -> str:
    """Upload a report file (Markdown, HTML, ...) to ``<artifact_dir>/<name>``; return its artifact path."""
    return _log_file(Path(path), artifact_dir, run_id)


def log_figure(png_path: str | Path, *, artifact_dir: str = FIGURES_DIR, run_id: str | None = None) -> str:
    """Upload a rendered figure (PNG/SVG file) to ``<artifact_dir>/<name>``; the MLflow UI previews it there."""
    return _log_file(Path(png_path), artifact_dir, run_id)


def log_json(data: Mapping[str, Any], name: str, *, artifact_dir: str = JSON_DIR, run_id: str | None = None) -> str:
    """Store `data` as ``<artifact_dir>/<name>.json`` (sorted keys; numpy scalars, paths and tuples allowed)."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    text = json.dumps(data, indent=2, sort_keys=True, default=_jsonable)
    artifact_file = f"{artifact_dir}/{file_name}" if artifact_dir else file_name
    target = resolve_run_id(run_id)
    mlflow.MlflowClient().log_text(target, text, artifact_file)
    return artifact_file


def _log_file(path: Path, artifact_dir: str, run_id: str | None) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file; nothing to log")
    target = resolve_run_id(run_id)
    mlflow.MlflowClient().log_artifact(target, str(path), artifact_dir or None)
    return f"{artifact_dir}/{path.name}" if artifact_dir else path.name


def _jsonable(value: Any) -> Any:
    """Values `json` cannot write itself: numpy scalars and arrays, paths, sets."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
