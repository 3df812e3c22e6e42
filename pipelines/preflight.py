"""Checks made before any pipeline step runs: a typo must cost seconds, not a Teacher pass and a training run.

The config itself (widths that do not fit the model, a negative budget, unknown fields) is validated when it is
loaded (`PipelineConfig.parse`). What a config cannot know on its own is checked here: that the user's data
files exist, that a registered data set's mirror is there, and that the MLflow tracking store answers.
"""

from __future__ import annotations

from pathlib import Path

from matta_core import storage
from matta_core.config import PipelineConfig
from matta_core.data import DATASETS


class PreflightError(ValueError):
    """A run that cannot succeed; the message lists every problem found and what to do."""


def preflight(config: PipelineConfig, *, tracking_uri: str | None = None) -> None:
    """Raise `PreflightError` listing every problem; check the tracking store at `tracking_uri` (if given) last.

    The tracking check comes last because it creates the folder of a sqlite store: a run with bad data should
    leave nothing behind.
    """
    problems = _data_problems(config)
    if problems:
        raise PreflightError("the run cannot start:\n" + "\n".join(f"  {p}" for p in problems))
    if tracking_uri is not None:
        from matta_core.tracking import TrackingError, check_tracking_uri

        try:
            check_tracking_uri(tracking_uri)
        except TrackingError as error:
            raise PreflightError(f"the run cannot start:\n  tracking_uri: {error}") from None


def _data_problems(config: PipelineConfig) -> list[str]:
    data = config.data
    problems = []
    if data.source in DATASETS:
        if data.mirror_dir is not None and storage.is_local(data.mirror_dir):
            folder = Path(storage.to_local_path(data.mirror_dir)) / data.source
            if not folder.is_dir():
                problems.append(f"data.mirror_dir: {folder} does not exist (the mirror holds <mirror>/{data.source}/)")
    else:
        problems += _file_problem("data.source", data.source, registered=True)
    if data.test_source is not None:
        problems += _file_problem("data.test_source", data.test_source, registered=False)
    return problems


def _file_problem(field: str, uri: str, *, registered: bool) -> list[str]:
    also = f" or a registered data set ({', '.join(sorted(DATASETS))})" if registered else ""
    try:
        found = storage.exists(uri)
    except Exception as error:  # a malformed URI, or a gs:// bucket we may not read: say so now, not mid-run
        return [f"{field}: cannot check {uri!r}: {error}"]
    if not found:
        return [f"{field}: no file at {uri!r}; give a CSV/JSONL/Parquet file (path, file:// or gs:// URI){also}"]
    return []
