"""``matta submit``: compile the pipeline, validate it, and start a run of it on a KFP cluster.

With an MLflow server as ``tracking_uri``, the parent run is created here (the steps attach to it by id from
the cluster's pods); it ends FINISHED once the submission is accepted and records the KFP run id, while each
step's child run records how that step ended. A sqlite store on this machine cannot be reached from the pods, so
it is refused; with no ``tracking_uri`` (nor ``MLFLOW_TRACKING_URI``) the run is not tracked.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matta_core.config import PipelineConfig
from pipelines.preflight import PreflightError, preflight


@dataclass(frozen=True)
class Submission:
    """A pipeline run accepted by a KFP cluster (and its MLflow parent run, when tracked)."""

    kfp_run_id: str
    kfp_run_url: str
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None


def connect(host: str) -> Any:
    """A `kfp.Client` for `host`, or `PreflightError` saying the API is not reachable (checked before compiling)."""
    import kfp

    try:
        return kfp.Client(host=host)
    except Exception as error:  # urllib3's MaxRetryError, kfp_server_api's ApiException, ...: all mean "not there"
        reason = str(getattr(error, "reason", "") or error)
        raise PreflightError(
            f"the KFP API at {host} is not reachable ({reason[:300]}): check --host (the KFP UI/API URL, e.g. "
            "http://localhost:8080 after `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`)"
        ) from None


def submit_pipeline(
    config: PipelineConfig, host: str, *, experiment: str | None = None, run_name: str | None = None,
    enable_caching: bool | None = None, image: str | None = None,
) -> Submission:
    """Validate, connect, compile to a temporary YAML, and create the run; see the module docstring for tracking.

    `image`: every task's container image (default: ``default_image_tag()``); checked first, by
    `pipelines.compile.cluster_image` (`ImageTagError` if the cluster could not pull it or it names no one build).
    """
    from matta_core.tracking.uri import ENV_TRACKING_URI, resolve_tracking_uri, sqlite_path
    from pipelines.compile import cluster_image, compile_pipeline
    from pipelines.matta_pipeline import pipeline_arguments

    image = cluster_image(image)  # before anything is contacted: a name the nodes cannot pull fails every task
    chosen = (config.tracking_uri or "").strip() or os.environ.get(ENV_TRACKING_URI, "").strip()
    uri = resolve_tracking_uri(chosen) if chosen else None
    if uri and sqlite_path(uri) is not None:
        raise PreflightError(
            f"tracking_uri {uri!r} is a sqlite file on this machine, which the cluster's pods cannot reach: set "
            "tracking_uri to an MLflow server URL (http://...), or leave it empty to run untracked"
        )
    preflight(config, tracking_uri=uri or None)
    client = connect(host)
    run_name = run_name or f"{config.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    experiment = experiment or config.name
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "pipeline.yaml"
        compile_pipeline(package, image=image)

        def create(tracking_uri: str = "", parent_run_id: str = "") -> Any:
            arguments = pipeline_arguments(config, tracking_uri=tracking_uri, parent_run_id=parent_run_id)
            return client.create_run_from_pipeline_package(
                str(package), arguments=arguments, run_name=run_name, experiment_name=experiment,
                enable_caching=enable_caching,
            )

        if not uri:
            result = create()
            return Submission(result.run_id, _run_url(host, result.run_id))

        from matta_core.tracking import log_params_flat, pipeline_run
        from matta_core.tracking import tags as T
        from pipelines.code_version import code_version

        tags = {T.PIPELINE: config.name, T.CODE_VERSION: code_version()}
        with pipeline_run(uri, config.name, run_name, tags, description=f"submitted to KFP at {host}") as parent:
            log_params_flat(config.model_dump(mode="json"), run_id=parent.run_id)
            result = create(parent.tracking_uri, parent.run_id)
            log_params_flat({"kfp": {"host": host, "run_id": result.run_id, "image": image}},
                            run_id=parent.run_id)
        return Submission(result.run_id, _run_url(host, result.run_id), parent.run_id, parent.tracking_uri)


def _run_url(host: str, run_id: str) -> str:
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"
