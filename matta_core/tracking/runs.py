"""One parent MLflow run per pipeline run, one nested child run per step, and small logging helpers.

A pipeline run looks like this in MLflow::

    experiment "banking77"
      run "train-2026-11-28" (matta.run_kind=pipeline)       <- pipeline_run(...), in the process that starts it
        run "prepare"         (matta.step=prepare)          <- step_run(parent_run_id, "prepare"), any process
        run "train"           (matta.step=train)

Steps usually run in other processes (KFP), so a step attaches to its parent by id: the pipeline hands
`TrackedRun.run_id` and `TrackedRun.tracking_uri` to each step as plain parameters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from matta_core.tracking import tags as T
from matta_core.tracking.cleanup import end_abandoned_at_start
from matta_core.tracking.driver import driver_tags
from matta_core.tracking.errors import TrackingError
from matta_core.tracking.outage import close_reporting_outages
from matta_core.tracking.retries import apply_retry_budget
from matta_core.tracking.uri import ENV_TRACKING_URI, check_tracking_uri, redact, resolve_tracking_uri, sqlite_path

#: Marks a value cut to MLflow's length limit, so a reader knows the logged value is not the whole one.
TRUNCATION_MARK = "...[truncated]"


@dataclass(frozen=True)
class TrackedRun:
    """An MLflow run as matta passes it around: enough to attach child runs or log to it from any process."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    name: str


@contextmanager
def pipeline_run(
    tracking_uri: str | None,
    experiment: str,
    run_name: str,
    tags: Mapping[str, Any] | None = None,
    *,
    output_dir: str | Path | None = None,
    description: str | None = None,
    resume_run_id: str | None = None,
) -> Iterator[TrackedRun]:
    """Open the one parent run of a pipeline run; it ends FINISHED, FAILED (exception) or KILLED (Ctrl-C).

    `tracking_uri` is resolved with `resolve_tracking_uri` (empty -> ``<output_dir>/mlflow.db``) and checked with
    `check_tracking_uri` first, so an unreachable server fails here, in seconds. Inside the block the run is
    MLflow's active run and ``MLFLOW_TRACKING_URI`` names the store, so `step_run` calls and subprocesses started
    here find it; both are restored on exit.

    The run is tagged with its driver, this process (`matta_core.tracking.driver`); runs of `experiment` left
    RUNNING by a driver that died on this host are first ended FAILED, in one printed line
    (`matta_core.tracking.cleanup`). A server that stops answering raises `TrackingUnavailable` at the end.

    `resume_run_id`: the run of an unfinished earlier attempt, reopened (the same MLflow run, now driven by this
    process) when the store has it in `experiment`; otherwise a new run opens. `TrackedRun.run_id` says which.
    """
    uri = resolve_tracking_uri(tracking_uri, output_dir)
    apply_retry_budget()
    check_tracking_uri(uri)
    with _using_tracking_uri(uri):
        experiment_id = _experiment_id(experiment, uri)
        resumed = _reopenable(uri, resume_run_id, experiment_id)
        # Runs of this experiment whose driver died on this host would otherwise stay RUNNING for good.
        ended = end_abandoned_at_start(uri, experiment, keep=resumed)
        if ended:
            print(ended, flush=True)
        # The driver (this process) is named so that `matta runs cleanup` can tell when it died; a reopened run
        # gets the new driver's tags over its old one's.
        run_tags = {**_stringify(tags or {}), **driver_tags(), T.RUN_KIND: T.RUN_KIND_PIPELINE}
        if resumed:
            active = mlflow.start_run(run_id=resumed, tags=run_tags, description=description)
        else:
            active = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags,
                                      description=description)
        with _ending(active.info.run_id, uri):
            yield TrackedRun(active.info.run_id, experiment_id, uri, active.info.run_name or run_name)


@contextmanager
def step_run(
    parent_run_id: str,
    step_name: str,
    *,
    tracking_uri: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[TrackedRun]:
    """Open a child run named `step_name` under the pipeline run `parent_run_id`, from this or any other process.

    The child goes into the parent's experiment (MLflow would otherwise put a child started in a fresh process
    into the Default experiment) and carries ``mlflow.parentRunId``, so the UI shows it nested. `tracking_uri`
    defaults to ``MLFLOW_TRACKING_URI`` (which `pipeline_run` sets for the processes it starts).
    """
    uri = resolve_tracking_uri(tracking_uri)
    apply_retry_budget()
    check_tracking_uri(uri)
    with _using_tracking_uri(uri):
        try:
            parent = mlflow.MlflowClient(uri).get_run(parent_run_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise TrackingError(
                f"step {step_name!r}: parent run {parent_run_id!r} not found in the tracking store "
                f"{redact(uri)} — pass the pipeline run's tracking_uri and run_id to every step ({exc.message})"
            ) from exc
        run_tags = {**_stringify(tags or {}), T.RUN_KIND: T.RUN_KIND_STEP, T.STEP: step_name}
        active = mlflow.start_run(
            experiment_id=parent.info.experiment_id, run_name=step_name, nested=True,
            parent_run_id=parent_run_id, tags=run_tags,
        )
        with _ending(active.info.run_id, uri, step=step_name):
            yield TrackedRun(active.info.run_id, parent.info.experiment_id, uri, step_name)


def log_params_flat(params: Mapping[str, Any], *, run_id: str | None = None, prefix: str = "") -> dict[str, str]:
    """Log `params` with nested mappings flattened to dotted keys (``{"a": {"b": 1}}`` -> ``a.b=1``).

    Values become strings (lists as JSON-like ``[1, 2]``) cut to MLflow's 6000-character limit, marked with
    `TRUNCATION_MARK`. Logs to `run_id`, or to the active run. Returns what was logged. Logging a key again with a
    different value is an MLflow error: params describe a run's inputs, which do not change.
    """
    flat = flatten(params, prefix)
    for key in flat:
        if len(key) > MAX_ENTITY_KEY_LENGTH:
            raise ValueError(f"param name {key[:80]!r}... is {len(key)} characters; MLflow allows "
                             f"{MAX_ENTITY_KEY_LENGTH}")
    logged = {key: truncate(value, MAX_PARAM_VAL_LENGTH) for key, value in flat.items()}
    client, target = _client_and_run(run_id)
    items = [Param(key, value) for key, value in logged.items()]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(target, params=items[start:start + MAX_PARAMS_TAGS_PER_BATCH])
    return logged


def log_metrics(metrics: Mapping[str, float], step: int | None = None, *, run_id: str | None = None) -> None:
    """Log numeric `metrics` at `step` in as few requests as MLflow allows (1000 metrics per request)."""
    client, target = _client_and_run(run_id)
    items = to_metrics(metrics, step or 0)
    for start in range(0, len(items), MAX_METRICS_PER_BATCH):
        client.log_batch(target, metrics=items[start:start + MAX_METRICS_PER_BATCH])


def set_lineage_tags(
    data_content_hash: str | None,
    teacher_cache_key: str | None,
    code_version: str | None,
    *,
    teacher_fingerprint: str | None = None,
    widths: tuple[int, ...] | list[int] | None = None,
    extra: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, str]:
    """Tag a run with where its inputs came from (names in `matta_core.tracking.tags`); None values are skipped.

    `extra` may hold further documented ``matta.*`` tags. Returns the tags set.
    """
    values: dict[str, Any] = {
        T.DATA_CONTENT_HASH: data_content_hash,
        T.TEACHER_CACHE_KEY: teacher_cache_key,
        T.CODE_VERSION: code_version,
        T.TEACHER_FINGERPRINT: teacher_fingerprint,
        T.MODEL_WIDTHS: None if widths is None else T.widths_value(widths),
    }
    for name, value in (extra or {}).items():
        values[T.check_tag_name(name)] = value
    tags = {name: truncate(str(value), MAX_TAG_VAL_LENGTH) for name, value in values.items() if value is not None}
    set_tags(tags, run_id=run_id)
    return tags


def set_tags(tags: Mapping[str, Any], *, run_id: str | None = None) -> None:
    """Set tags on `run_id` (or the active run) in one request."""
    client, target = _client_and_run(run_id)
    items = [RunTag(key, truncate(str(value), MAX_TAG_VAL_LENGTH)) for key, value in tags.items()]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(target, tags=items[start:start + MAX_PARAMS_TAGS_PER_BATCH])


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings -> ``{"a.b": "value"}`` with string values; an empty mapping is kept as ``"{}"``."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
        elif isinstance(value, list | tuple):
            flat[name] = "[" + ", ".join(str(v) for v in value) + "]"
        else:
            flat[name] = "{}" if isinstance(value, Mapping) else str(value)
    return flat


def truncate(value: str, limit: int) -> str:
    """`value`, or its head plus `TRUNCATION_MARK` when longer than `limit` characters."""
    if len(value) <= limit:
        return value
    return value[:limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def to_metrics(metrics: Mapping[str, Any], step: int, timestamp_ms: int | None = None) -> list[Metric]:
    """MLflow `Metric`s for one step; values go through ``float`` (so 0-d tensors and numpy scalars work)."""
    now = timestamp_ms if timestamp_ms is not None else _now_ms()
    return [Metric(str(key), float(value), now, int(step)) for key, value in metrics.items()]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _stringify(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): truncate(str(v), MAX_TAG_VAL_LENGTH) for k, v in tags.items()}


def resolve_run_id(run_id: str | None) -> str:
    """`run_id`, or the active run's id; `TrackingError` if neither is there."""
    if run_id is not None:
        return run_id
    active = mlflow.active_run()
    if active is None:
        raise TrackingError("no active MLflow run: call inside pipeline_run(...)/step_run(...), or pass run_id")
    return str(active.info.run_id)


def _client_and_run(run_id: str | None) -> tuple[mlflow.MlflowClient, str]:
    # The run first: a client made with no run around would create ./mlflow.db in the working directory.
    target = resolve_run_id(run_id)
    return mlflow.MlflowClient(), target


def _reopenable(uri: str, run_id: str | None, experiment_id: str) -> str | None:
    """`run_id` if the store has it as a live run of `experiment_id` (a cleanup's end tags removed: it runs
    again), else None."""
    if not run_id:
        return None
    client = mlflow.MlflowClient(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
    if run.info.experiment_id != experiment_id or run.info.lifecycle_stage != "active":
        return None
    for key in (T.ENDED_BY, T.ENDED_REASON):
        if key in run.data.tags:
            client.delete_tag(run_id, key)
    return run_id


def _experiment_id(name: str, uri: str) -> str:
    """The id of experiment `name`, created if missing (with its artifacts beside a sqlite store's database)."""
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    db = sqlite_path(uri)
    # MLflow would put artifacts in ./mlruns of whichever process creates the experiment; keeping them beside the
    # database makes the embedded store one self-contained folder.
    location = (db.parent / "mlartifacts").as_uri() if db is not None else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # Another process created it between our lookup and create: use theirs.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


@contextmanager
def _using_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow (this process and, through the environment, its children) at `uri`; restore on exit."""
    # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI, so the environment holds the previous choice too.
    previous = os.environ.get(ENV_TRACKING_URI)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        # None unsets both (MLflow handles it; its type hint leaves it out).
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]


@contextmanager
def _ending(run_id: str, uri: str, step: str | None = None) -> Iterator[None]:
    """End the active run `run_id` with a status that says how the block ended; `TrackingUnavailable` when the
    server at `uri` no longer answers (`close_reporting_outages`)."""
    finished = RunStatus.to_string(RunStatus.FINISHED)
    status = finished
    try:
        yield
    except KeyboardInterrupt:
        status = RunStatus.to_string(RunStatus.KILLED)
        raise
    except BaseException:
        status = RunStatus.to_string(RunStatus.FAILED)
        raise
    finally:
        close_reporting_outages(uri, run_id, lambda: _end(run_id, status), after_failure=status != finished,
                                step=step)


def _end(run_id: str, status: str) -> None:
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status)
    else:
        # Someone ended or replaced the active run inside the block; still close ours.
        mlflow.MlflowClient().set_terminated(run_id, status)
