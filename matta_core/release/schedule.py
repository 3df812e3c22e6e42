"""Scheduled pipeline runs on a Kubeflow Pipelines cluster: a recurring run of the compiled pipeline package.

`recurring_run_request` is a pure function: it validates and returns the keyword arguments of
``kfp.Client.create_recurring_run``; `recurring_run_body` turns them into the exact JSON body the client POSTs to
``/apis/v2beta1/recurringruns`` (no cluster needed to check either). Defaults are the safe ones for a training
pipeline: ``max_concurrency=1`` (a slow run never overlaps the next) and ``no_catchup=True`` (a paused schedule
resumes with one run, not a backfill of every missed night).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matta_core.release.cron import parse_cron

DEFAULT_CRON = "0 0 2 * * *"
PACKAGE_SUFFIXES = (".yaml", ".yml", ".zip", ".tar.gz", ".tgz")


def recurring_run_request(
    *,
    package_path: str | Path,
    experiment_id: str,
    job_name: str,
    cron: str = DEFAULT_CRON,
    params: Mapping[str, Any] | None = None,
    description: str | None = None,
    max_concurrency: int = 1,
    no_catchup: bool = True,
    enabled: bool = True,
    pipeline_root: str | None = None,
    enable_caching: bool | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    """The ``create_recurring_run`` kwargs for running the compiled `package_path` on `cron` (6 fields, UTC)."""
    schedule = parse_cron(cron)  # raises CronError, e.g. for a 5-field crontab line
    package = str(package_path)
    if not package.endswith(PACKAGE_SUFFIXES):
        raise ValueError(f"pipeline package {package!r}: expected a compiled pipeline file ending in "
                         f"{', '.join(PACKAGE_SUFFIXES)} (kfp dsl compile ... --output pipeline.yaml)")
    if not experiment_id:
        raise ValueError("a recurring run needs an experiment id (resolve one by name with resolve_experiment_id)")
    if not job_name:
        raise ValueError("job_name must be non-empty")
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    return {
        "experiment_id": experiment_id,
        "job_name": job_name,
        "description": description,
        "start_time": start_time,
        "end_time": end_time,
        "cron_expression": schedule.expression,
        "max_concurrency": max_concurrency,
        "no_catchup": no_catchup,
        "params": dict(params or {}),
        "pipeline_package_path": package,
        "enabled": enabled,
        "pipeline_root": pipeline_root,
        "enable_caching": enable_caching,
        "service_account": service_account,
    }


def recurring_run_body(request: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body ``kfp.Client.create_recurring_run(**request)`` sends (built as kfp 2.17.3 builds it)."""
    import kfp_server_api

    # Private helpers of the pinned kfp client: reading the package exactly as the client does keeps the body equal
    # to what it sends (a test compares the two over HTTP).
    from kfp.client.client import _extract_pipeline_yaml, _override_caching_options

    doc = _extract_pipeline_yaml(request["pipeline_package_path"])
    if request.get("enable_caching") is not None:
        _override_caching_options(doc.pipeline_spec, request["enable_caching"], None)
    trigger = kfp_server_api.V2beta1Trigger(cron_schedule=kfp_server_api.V2beta1CronSchedule(
        start_time=request.get("start_time"), end_time=request.get("end_time"), cron=request["cron_expression"]))
    body = kfp_server_api.V2beta1RecurringRun(
        experiment_id=request["experiment_id"],
        mode=kfp_server_api.RecurringRunMode.ENABLE if request.get("enabled", True)
        else kfp_server_api.RecurringRunMode.DISABLE,
        pipeline_spec=doc.to_dict(),
        runtime_config=kfp_server_api.V2beta1RuntimeConfig(pipeline_root=request.get("pipeline_root"),
                                                           parameters=request.get("params") or {}),
        display_name=request["job_name"],
        description=request.get("description"),
        no_catchup=request.get("no_catchup"),
        trigger=trigger,
        max_concurrency=request.get("max_concurrency"),
        service_account=request.get("service_account"),
    )
    return dict(kfp_server_api.ApiClient().sanitize_for_serialization(body))


def kfp_client(host: str) -> Any:
    """A KFP client for `host` (the KFP API / UI URL)."""
    import kfp

    return kfp.Client(host=host)


def resolve_experiment_id(client: Any, name: str, *, create: bool = True, namespace: str | None = None) -> str:
    """The id of the KFP experiment `name` (in the profile `namespace` on a multi-user Kubeflow), created when
    missing (and `create`)."""
    try:
        return str(client.get_experiment(experiment_name=name, namespace=namespace).experiment_id)
    except ValueError:  # kfp raises ValueError("No experiment is found with name ...")
        if not create:
            raise
        return str(client.create_experiment(name, namespace=namespace).experiment_id)


def create_schedule(client: Any, request: Mapping[str, Any]) -> str:
    """Create the recurring run; return its id."""
    return str(client.create_recurring_run(**request).recurring_run_id)


def list_schedules(client: Any, experiment_id: str | None = None) -> list[dict[str, Any]]:
    """Every recurring run (optionally of one experiment): id, name, status, cron, concurrency, catch-up."""
    rows, token = [], ""
    while True:
        page = client.list_recurring_runs(page_token=token, page_size=100, experiment_id=experiment_id)
        for run in page.recurring_runs or []:
            cron = getattr(getattr(run.trigger, "cron_schedule", None), "cron", None) if run.trigger else None
            rows.append({"id": run.recurring_run_id, "name": run.display_name, "status": run.status,
                         "cron": cron, "max_concurrency": run.max_concurrency, "no_catchup": run.no_catchup,
                         "experiment_id": run.experiment_id})
        token = page.next_page_token
        if not token:
            return rows


def pause_schedule(client: Any, recurring_run_id: str) -> None:
    client.disable_recurring_run(recurring_run_id)


def resume_schedule(client: Any, recurring_run_id: str) -> None:
    client.enable_recurring_run(recurring_run_id)


def delete_schedule(client: Any, recurring_run_id: str) -> None:
    client.delete_recurring_run(recurring_run_id)
