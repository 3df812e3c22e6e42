"""MLflow tracking for matta: the one seam through which the library talks to MLflow.

- `uri`: which store (``resolve_tracking_uri``; default ``<output dir>/mlflow.db``) and a fail-fast check.
- `runs`: one parent run per pipeline run (``pipeline_run``), a nested child per step (``step_run``, any
  process), and batched ``log_params_flat`` / ``log_metrics`` / ``set_lineage_tags``.
- `tags`: every ``matta.*`` tag, documented in one place.
- `callback`: ``MLflowMetricsCallback`` for the trainer.
- `models`: ``log_standalone_model`` (pickle-free pyfunc from code that loads without matta: its serving code
  travels with it, its requirements are all on PyPI); `folder_models`: ``log_model_folder`` (a
  saved folder as a LoggedModel of files, for the causal-LM decoders); `artifacts`: reports, figures, JSON.

- `retries`, `outage`: a server that stops answering fails every process within ``tracking_retry_seconds``
  (`TrackingUnavailable`); `driver`, `cleanup`: runs a dead driver left RUNNING are marked FAILED
  (``cleanup_runs``, ``matta runs cleanup``).

Nothing else in matta imports mlflow (``mlflow==3.17.2``). `run_tasks`: the pipeline's first and exit tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matta_core.lazy_exports import lazy_exports

# Exported names -> the module that defines them, imported on first use (`matta_core.lazy_exports`).
_EXPORTS = {
    "log_figure": "matta_core.tracking.artifacts",
    "log_json": "matta_core.tracking.artifacts",
    "log_report": "matta_core.tracking.artifacts",
    "MLflowMetricsCallback": "matta_core.tracking.callback",
    "cleanup_runs": "matta_core.tracking.cleanup",
    "TrackingError": "matta_core.tracking.errors",
    "log_model_folder": "matta_core.tracking.folder_models",
    "log_standalone_model": "matta_core.tracking.models",
    "TrackingUnavailable": "matta_core.tracking.outage",
    "TrackedRun": "matta_core.tracking.runs",
    "log_metrics": "matta_core.tracking.runs",
    "log_params_flat": "matta_core.tracking.runs",
    "pipeline_run": "matta_core.tracking.runs",
    "set_lineage_tags": "matta_core.tracking.runs",
    "set_tags": "matta_core.tracking.runs",
    "step_run": "matta_core.tracking.runs",
    "check_tracking_uri": "matta_core.tracking.uri",
    "resolve_tracking_uri": "matta_core.tracking.uri",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from matta_core.tracking.artifacts import log_figure, log_json, log_report
    from matta_core.tracking.callback import MLflowMetricsCallback
    from matta_core.tracking.cleanup import cleanup_runs
    from matta_core.tracking.errors import TrackingError
    from matta_core.tracking.folder_models import log_model_folder
    from matta_core.tracking.models import log_standalone_model
    from matta_core.tracking.outage import TrackingUnavailable
    from matta_core.tracking.runs import (
        TrackedRun,
        log_metrics,
        log_params_flat,
        pipeline_run,
        set_lineage_tags,
        set_tags,
        step_run,
    )
    from matta_core.tracking.uri import check_tracking_uri, resolve_tracking_uri

__all__ = [
    "MLflowMetricsCallback",
    "TrackedRun",
    "TrackingError",
    "TrackingUnavailable",
    "check_tracking_uri",
    "cleanup_runs",
    "log_figure",
    "log_json",
    "log_metrics",
    "log_model_folder",
    "log_params_flat",
    "log_report",
    "log_standalone_model",
    "pipeline_run",
    "resolve_tracking_uri",
    "set_lineage_tags",
    "set_tags",
    "step_run",
]
