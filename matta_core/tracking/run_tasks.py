"""The pipeline's first and exit tasks: open the MLflow parent run (and read the data's version), then end it.

A local run (`matta run`) opens its parent run before the pipeline starts and passes its id in: then the first
task only reads the data version and the exit task leaves the run to the local runner. A cluster run (`matta
submit`, a recurring run on KFP, a Vertex AI schedule) passes none: the first task opens the parent run in the
store named by ``MLFLOW_TRACKING_URI`` (the MLflow Secret's key), keyed on the KFP run id so that a retry finds
it and tagged with the run's identity from the environment (`matta_core.cluster.run_identity`) so that the
cacheable steps find it; the exit task (a ``dsl.ExitHandler``: it runs whether the steps succeeded or not) ends
it FINISHED or FAILED. No URI anywhere: the run is untracked, and says so.

Both tasks stay light (no torch, no pandas): each is a process of its own, and imports are most of its cost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from matta_core.data.section import DataSection
from matta_core.tracking.uri import configured_tracking_uri

log = logging.getLogger(__name__)


def start_pipeline_run(
    *,
    experiment: str,
    data: DataSection,
    params: Mapping[str, Any],
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    kfp_run_id: str,
    kfp_run_name: str = "",
) -> tuple[str, str]:
    """Return (the parent run id, or "" when untracked; the data's version) for this pipeline run."""
    from matta_core.data.version import data_version

    version = data_version(data)
    print(f"data version: {version}", flush=True)
    if parent_run_id:  # opened by `matta run` on this machine
        return parent_run_id, version
    uri = configured_tracking_uri(tracking_uri)
    if not uri:
        print("tracking off: no tracking_uri and no MLFLOW_TRACKING_URI (name the MLflow Secret in "
              "cluster.mlflow_secret, or a Secret Manager secret in cluster.settings_secret); the release step will "
              "register nothing", flush=True)
        return "", version
    from matta_core.cluster.run_identity import current_run_key
    from matta_core.tracking import tags as T
    from matta_core.tracking.kfp_parent import open_parent_run

    run_id = open_parent_run(
        uri, experiment, kfp_run_id, kfp_run_name=kfp_run_name, run_key=current_run_key(), params=params,
        tags={T.PIPELINE: experiment, T.CODE_VERSION: code_version, T.DATA_VERSION: version.split(" ", 1)[0]},
    )
    print(f"MLflow parent run {run_id} (KFP run {kfp_run_id})", flush=True)
    return run_id, version


def end_pipeline_run(*, tracking_uri: str, given_parent_run_id: str, experiment: str, kfp_run_id: str,
                     state: str) -> str:
    """End the parent run the first task opened for KFP run `kfp_run_id`, as the pipeline ended (`state`, the
    exit task's ``PipelineTaskFinalStatus.state``); say what was done."""
    if given_parent_run_id:
        return "nothing to end: the parent run belongs to matta run, which ends it"
    uri = configured_tracking_uri(tracking_uri)
    if not uri:
        return "nothing to end: the run is untracked"
    from matta_core.tracking.kfp_parent import close_parent_run, find_parent_run

    run_id = find_parent_run(uri, experiment, kfp_run_id)
    if run_id is None:  # the first task failed before it opened one
        return f"nothing to end: no parent run for KFP run {kfp_run_id} in experiment {experiment!r}"
    status = close_parent_run(uri, run_id, state)
    return f"parent run {run_id} ended {status} (the pipeline's tasks ended {state})"
