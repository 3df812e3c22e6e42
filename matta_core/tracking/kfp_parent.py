"""The MLflow parent run of a cluster pipeline run, opened by the pipeline itself and keyed on the KFP run.

A recurring run on KFP or Vertex AI has no submitter machine to open its parent run: its first task does, with
`open_parent_run`. The run is found by its ``matta.kfp.run_id`` tag before one is created, so a retried first
task attaches to the parent it opened before instead of opening a second one. The steps that may be served from a
cache take no per-run input and find the parent by the run's identity in their environment
(`find_parent_by_run_key`); the release step takes the parent run id, its idempotency key, so that is one per KFP
run. The pipeline's exit task ends it with `close_parent_run`: FINISHED, or FAILED when a task failed.
Each entry point first bounds MLflow's retries by the budget the compiled pipeline puts in the task's environment
(`matta_core.tracking.retries.apply_retry_budget`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlflow
from mlflow.entities import RunStatus

from matta_core.tracking import tags as T
from matta_core.tracking.retries import apply_retry_budget
from matta_core.tracking.runs import _experiment_id, _stringify, _using_tracking_uri, log_params_flat
from matta_core.tracking.uri import check_tracking_uri, resolve_tracking_uri

#: KFP task states (``PipelineTaskFinalStatus.state``) that end the parent run FINISHED; any other ends it FAILED.
SUCCEEDED_STATES = frozenset({"SUCCEEDED", "COMPLETE", "Succeeded"})


def find_parent_run(tracking_uri: str, experiment: str, kfp_run_id: str) -> str | None:
    """The id of the parent run of KFP run `kfp_run_id` in `experiment`, or None."""
    return _find_parent(tracking_uri, experiment, T.KFP_RUN_ID, kfp_run_id)


def find_parent_by_run_key(tracking_uri: str, experiment: str, run_key: str) -> str | None:
    """The id of the parent run tagged with `run_key` (`matta_core.cluster.run_identity.current_run_key`: how a
    task that takes no per-run input finds its run) in `experiment`, or None."""
    return _find_parent(tracking_uri, experiment, T.RUN_KEY, run_key)


def _find_parent(tracking_uri: str, experiment: str, tag: str, value: str) -> str | None:
    apply_retry_budget()
    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{tag}` = '{value}' and tags.`{T.RUN_KIND}` = '{T.RUN_KIND_PIPELINE}'",
        max_results=2,
    )
    # Oldest first if a race ever made two: every task then agrees on the same one.
    return str(sorted(runs, key=lambda r: r.info.start_time)[0].info.run_id) if runs else None


def open_parent_run(
    tracking_uri: str | None,
    experiment: str,
    kfp_run_id: str,
    *,
    kfp_run_name: str = "",
    run_key: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> str:
    """The parent run of KFP run `kfp_run_id`: found if a previous attempt opened it, else created (RUNNING).

    `tracking_uri` None/empty reads ``MLFLOW_TRACKING_URI`` (on a cluster, from the MLflow Secret). `params`
    (the run's config) are logged once, on creation. `run_key` (the run's identity as the tasks read it from
    their environment) is tagged too, so that tasks without a per-run input find the run.
    """
    if not kfp_run_id:
        raise ValueError("kfp_run_id is empty: the pipeline passes dsl.PIPELINE_JOB_ID_PLACEHOLDER")
    uri = resolve_tracking_uri(tracking_uri)
    apply_retry_budget()
    check_tracking_uri(uri)
    existing = find_parent_run(uri, experiment, kfp_run_id)
    if existing is not None:
        return existing
    client = mlflow.MlflowClient(uri)
    run_tags = {**_stringify(tags or {}), T.RUN_KIND: T.RUN_KIND_PIPELINE, T.KFP_RUN_ID: kfp_run_id,
                T.KFP_RUN_NAME: kfp_run_name or kfp_run_id, **({T.RUN_KEY: run_key} if run_key else {})}
    run = client.create_run(_experiment_id(experiment, uri), tags=run_tags, run_name=kfp_run_name or None)
    run_id = str(run.info.run_id)
    if params:
        with _using_tracking_uri(uri):
            log_params_flat(params, run_id=run_id)
    return run_id


def close_parent_run(tracking_uri: str | None, run_id: str, state: str) -> str:
    """End the parent run `run_id` as the pipeline ended (`state`, a KFP task state); return the MLflow status."""
    uri = resolve_tracking_uri(tracking_uri)
    apply_retry_budget()
    status = RunStatus.FINISHED if state in SUCCEEDED_STATES else RunStatus.FAILED
    mlflow.MlflowClient(uri).set_terminated(run_id, RunStatus.to_string(status))
    return RunStatus.to_string(status)
