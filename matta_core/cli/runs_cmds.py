"""`matta runs cleanup`: mark FAILED the pipeline runs that a dead driver left RUNNING in MLflow.

Which runs, and why only those: `matta_core.tracking.cleanup`. Exit codes: 0 done (also when nothing was to end),
1 the server stopped answering part way, 2 no such store or experiment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from matta_core.cli.app import app

runs_app = typer.Typer(help="The pipeline runs recorded in MLflow.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command()
def cleanup(
    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", help="MLflow tracking URI, e.g. http://mlflow:5000 or sqlite:///outputs/<name>/mlflow.db "
                               "(default: MLFLOW_TRACKING_URI).")] = None,
    experiment: Annotated[str | None, typer.Option(
        "--experiment", help="Only this experiment (a config's `name`; default: every experiment).")] = None,
    older_than: Annotated[float | None, typer.Option(
        "--older-than", min=0, metavar="HOURS",
        help="Also end runs whose driver cannot be checked from here (another host, a cluster run) once they "
             "started more than HOURS ago.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be ended; change nothing.")] = False,
) -> None:
    """End FAILED the RUNNING pipeline runs (and their RUNNING step runs) whose driver is gone.

    A run whose driver ran on this host is ended when that process is provably gone (its pid no longer exists, or
    belongs to a process started at another time). A run from another host or a cluster is ended only with
    --older-than. Step runs still RUNNING under a pipeline run that has ended are ended too. Each ended run is
    tagged matta.ended_by=cleanup and matta.ended_reason.
    """
    from matta_core.cli.errors import fail
    from matta_core.cli.registry_store import registry_uri
    from matta_core.tracking.cleanup import cleanup_runs
    from matta_core.tracking.outage import TrackingUnavailable, tracking_outages
    from matta_core.tracking.uri import redact

    uri = registry_uri(tracking_uri)
    try:
        with tracking_outages(uri):
            report = cleanup_runs(uri, experiment, older_than_hours=older_than, dry_run=dry_run)
    except TrackingUnavailable as error:
        fail(RuntimeError(f"the MLflow tracking server at {error.uri} stopped answering ({error.reason}); nothing "
                          "after that was changed: rerun `matta runs cleanup` once it is back"), 1)
    verb = "would end" if dry_run else "ended FAILED"
    for run in report.ended:
        with_children = f"; {run.children} step run(s) with it" if run.children else ""
        typer.echo(f"{verb}: run {run.run_id} {run.name!r} (experiment {run.experiment!r}, started "
                   f"{_when(run.started_ms)}): {run.why}{with_children}")
    for run in report.left:
        typer.echo(f"left RUNNING: run {run.run_id} {run.name!r} (experiment {run.experiment!r}): {run.why}")
    typer.echo(f"{'dry run: ' if dry_run else ''}{verb} {len(report.ended)} run(s), left {len(report.left)} "
               f"running, in {redact(uri)}")


def _when(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"
