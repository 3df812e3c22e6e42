"""Pipeline runs left RUNNING by a driver that died (killed, or its server went away), marked FAILED.

A pipeline's parent run is ended by whoever opened it: `matta run` on this machine, the exit task on a cluster.
When that never happens the run stays RUNNING in MLflow for good. `cleanup_runs` finds such runs and ends them
FAILED, with their RUNNING child runs, tagging each with ``matta.ended_by`` and ``matta.ended_reason``:

- a run whose driver ran on this host and is provably gone (`matta_core.tracking.driver`), always;
- a run from another host, or a cluster run (no driver recorded), only when it started more than
  `older_than_hours` ago: nothing on this machine can tell whether it is still going;
- a step run still RUNNING under a run that has ended (its task died with the server before it could close it).

`matta runs cleanup` runs it on demand; every `matta run` runs it for its own experiment at start, without the
age rule (`pipeline_run`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import mlflow
from mlflow.entities import Run, RunStatus, RunTag

from matta_core.tracking import tags as T
from matta_core.tracking.driver import driver_verdict
from matta_core.tracking.errors import TrackingError

ENDED_BY_CLEANUP = "cleanup"
ENDED_BY_RUN_START = "run-start"
_RUNNING = RunStatus.to_string(RunStatus.RUNNING)
_FAILED = RunStatus.to_string(RunStatus.FAILED)
_PARENT = "mlflow.parentRunId"
_NO_LINKS_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@dataclass(frozen=True)
class RunDecision:
    """One RUNNING run and what cleanup does with it: `end` it FAILED (or not), and `why`."""

    run_id: str
    name: str
    experiment: str
    started_ms: int
    end: bool
    why: str
    #: RUNNING child runs ended with it (or that would be, on a dry run).
    children: int = 0


@dataclass
class CleanupReport:
    """What `cleanup_runs` ended (or would end, on a dry run) and what it left running."""

    tracking_uri: str
    dry_run: bool
    ended: list[RunDecision] = field(default_factory=list)
    left: list[RunDecision] = field(default_factory=list)


def cleanup_runs(
    tracking_uri: str,
    experiment: str | None = None,
    *,
    older_than_hours: float | None = None,
    dry_run: bool = False,
    ended_by: str = ENDED_BY_CLEANUP,
    keep: str | None = None,
) -> CleanupReport:
    """End FAILED the pipeline runs in `experiment` (a name; None: every experiment) whose driver left them RUNNING.

    See the module docstring for which runs; `dry_run` only reports; run `keep` is left alone (a run being
    resumed). Raises `TrackingError` for an unknown `experiment`.
    """
    client = mlflow.MlflowClient(tracking_uri)
    experiments = _experiments(client, experiment)
    report = CleanupReport(tracking_uri, dry_run)
    now_ms = int(time.time() * 1000)
    # Listed before anything changes: ending runs while paging through the RUNNING ones would shift the pages.
    running = list(_search(client, list(experiments), f"attributes.status = '{_RUNNING}'")) if experiments else []
    children: dict[str, list[Run]] = {}
    for run in running:
        children.setdefault(run.data.tags.get(_PARENT, ""), []).append(run)
    ended: set[str] = set()
    with _no_run_links():
        for run in running:
            if run.data.tags.get(T.RUN_KIND) != T.RUN_KIND_PIPELINE or run.info.run_id == keep:
                continue
            decision = _decide(run, experiments, now_ms, older_than_hours)
            if not decision.end:
                report.left.append(decision)
                continue
            below = _descendants(run.info.run_id, children)
            for child in below:
                _end(client, child.info.run_id, ended_by, f"its pipeline run {run.info.run_id} was ended: "
                     f"{decision.why}", dry_run)
            _end(client, run.info.run_id, ended_by, decision.why, dry_run)
            ended.update([run.info.run_id, *(child.info.run_id for child in below)])
            report.ended.append(replace(decision, children=len(below)))
        report.ended += _orphaned_steps(client, running, experiments, ended, ended_by, dry_run)
    return report


def _decide(run: Run, experiments: dict[str, str], now_ms: int, older_than_hours: float | None) -> RunDecision:
    verdict = driver_verdict(run.data.tags)
    started = int(run.info.start_time or now_ms)
    end, why = verdict.dead is True, verdict.why
    if verdict.dead is None:
        hours = (now_ms - started) / 3_600_000
        if older_than_hours is None:
            why += f"; started {hours:.1f} h ago (--older-than HOURS ends such runs)"
        elif hours > older_than_hours:
            end, why = True, f"{why}; started {hours:.1f} h ago, more than --older-than {older_than_hours:g} h"
        else:
            why += f"; started {hours:.1f} h ago, within --older-than {older_than_hours:g} h"
    return RunDecision(run.info.run_id, run.info.run_name or "", experiments[run.info.experiment_id], started,
                       end, why)


def _orphaned_steps(client: Any, running: list[Run], experiments: dict[str, str], ended: set[str],
                    ended_by: str, dry_run: bool) -> list[RunDecision]:
    """Step runs still RUNNING under a run that has ended before (not one `ended` just now, nor its runs)."""
    found = []
    status: dict[str, str] = {}
    for run in running:
        parent = run.data.tags.get(_PARENT)
        if run.data.tags.get(T.RUN_KIND) != T.RUN_KIND_STEP or not parent or run.info.run_id in ended:
            continue
        if parent not in status:
            status[parent] = _status(client, parent)
        if status[parent] == _RUNNING:
            continue
        why = (f"its parent run {parent} ended {status[parent]} while it was still RUNNING" if status[parent]
               else f"its parent run {parent} no longer exists")
        _end(client, run.info.run_id, ended_by, why, dry_run)
        found.append(RunDecision(run.info.run_id, run.info.run_name or "", experiments[run.info.experiment_id],
                                 int(run.info.start_time or 0), True, why))
    return found


def _status(client: Any, run_id: str) -> str:
    """The status of run `run_id`, "" when the store no longer has it."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_run(run_id).info.status)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return ""


def _descendants(run_id: str, children: dict[str, list[Run]]) -> list[Run]:
    """The RUNNING runs below `run_id` (steps, and the runs a step nests under itself), from `children`."""
    found: list[Run] = []
    todo = [run_id]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += [child.info.run_id for child in below]
    return found


def _experiments(client: Any, name: str | None) -> dict[str, str]:
    """Experiment id -> name: the one named, or every active one."""
    if name is not None:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise TrackingError(f"no experiment named {name!r} in the tracking store (its name is the config's "
                                "`name`)")
        return {str(found.experiment_id): str(found.name)}
    experiments: dict[str, str] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments.update({str(e.experiment_id): str(e.name) for e in page})
        token = page.token
        if not token:
            return experiments


def _search(client: Any, experiment_ids: list[str], filter_string: str) -> Iterator[Run]:
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _end(client: Any, run_id: str, ended_by: str, why: str, dry_run: bool) -> None:
    if dry_run:
        return
    client.log_batch(run_id, tags=[RunTag(T.ENDED_BY, ended_by), RunTag(T.ENDED_REASON, why[:5000])])
    client.set_terminated(run_id, _FAILED)


@contextmanager
def _no_run_links() -> Iterator[None]:
    """Without MLflow's "View run ... at" lines, which it prints for every run a client ends on a server."""
    saved = os.environ.get(_NO_LINKS_ENV)
    os.environ[_NO_LINKS_ENV] = "true"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_NO_LINKS_ENV, None)
        else:
            os.environ[_NO_LINKS_ENV] = saved


def end_abandoned_at_start(tracking_uri: str, experiment: str, *, keep: str | None = None) -> str | None:
    """What a new pipeline run does first: end the runs of `experiment` that a dead driver on this host left
    RUNNING (no age rule), except `keep` (the run it resumes). Returns one line saying what it ended, None when
    nothing was. A store that refuses (another user's runs, a read-only store) is reported in that line and does not
    stop the new run."""
    from mlflow.exceptions import MlflowException

    from matta_core.tracking.outage import outage_reason

    try:
        report = cleanup_runs(tracking_uri, experiment, ended_by=ENDED_BY_RUN_START, keep=keep)
    except TrackingError:
        return None  # no such experiment yet: nothing to end
    except MlflowException as error:
        if outage_reason(error) is not None:
            raise
        return f"warning: could not end the runs a dead driver left RUNNING in {experiment!r}: {error.message}"
    if not report.ended:
        return None
    runs = "; ".join(f"{d.run_id} ({d.why})" for d in report.ended)
    return (f"marked FAILED {len(report.ended)} run(s) of experiment {experiment!r} that a dead driver left "
            f"RUNNING: {runs}")
