"""`matta promote`, `matta rollback`, `matta models list` and `matta schedule`: the release stage by hand.

All registry commands take ``--tracking-uri`` (default: ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from matta_core.cli.app import app
from matta_core.cli.common import parse_overrides

TrackingUriOption = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlflow.db).")]
HostOption = Annotated[str, typer.Option("--host", help="KFP API endpoint, e.g. http://localhost:8080.")]

models_app = typer.Typer(help="Registered models of the size classes.", no_args_is_help=True)
schedule_app = typer.Typer(help="Scheduled pipeline runs: a KFP recurring run, or a local cron loop (--local).")
app.add_typer(models_app, name="models")
app.add_typer(schedule_app, name="schedule")


@contextmanager
def _user_errors() -> Iterator[None]:
    """Errors a user can fix (bad version, reserved alias, held lock, bad cron) as one line and exit code 2."""
    from matta_core.release.cron import CronError
    from matta_core.release.lock import LockLostError, LockTimeoutError
    from matta_core.release.registry import AliasRaceError

    try:
        yield
    except (ValueError, CronError, LockTimeoutError, LockLostError, AliasRaceError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _client(tracking_uri: str | None) -> Any:
    from mlflow import MlflowClient

    from matta_core.tracking.uri import check_tracking_uri, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    return MlflowClient(uri)


@app.command()
def promote(
    model: Annotated[str, typer.Argument(help="Registered model, e.g. matta-banking77-s.")],
    to: Annotated[str, typer.Option("--to", help="Alias to move: champion or challenger (case-sensitive).")] = (
        "champion"),
    version: Annotated[int | None, typer.Option("--version", help="Version to promote (default: @challenger).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who promotes (recorded; default: the OS user).")] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Move a version to @champion (the old champion becomes @previous) or to @challenger."""
    from matta_core.release.promote import promote as do_promote

    with _user_errors():
        change = do_promote(_client(tracking_uri), model, to=to, version=version, by=by)
    typer.echo(change.describe())


@app.command()
def rollback(
    model: Annotated[str, typer.Argument(help="Registered model, e.g. matta-banking77-s.")],
    by: Annotated[str | None, typer.Option("--by", help="Who rolls back (recorded; default: the OS user).")] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Restore @previous as @champion (recorded on the model and on the version rolled back)."""
    from matta_core.release.promote import rollback as do_rollback

    with _user_errors():
        change = do_rollback(_client(tracking_uri), model, by=by)
    typer.echo(change.describe())


@models_app.command("list")
def models_list(
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only models whose name starts with this.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Size classes with their champion, challenger and previous versions and key metrics."""
    from matta_core.release.promote import format_models_table, list_models

    summaries = list_models(_client(tracking_uri), prefix)
    if as_json:
        typer.echo(json.dumps([s.__dict__ for s in summaries], indent=2, sort_keys=True))
    else:
        typer.echo(format_models_table(summaries))


@schedule_app.callback(invoke_without_command=True)
def schedule(
    ctx: typer.Context,
    cron: Annotated[str | None, typer.Option("--cron", help="6-field cron, seconds first, UTC: '0 0 2 * * *'.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="KFP API endpoint (cluster schedule).")] = None,
    package: Annotated[Path | None, typer.Option("--package", help="Compiled pipeline (pipeline.yaml).")] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="KFP experiment name (created if missing).")] = (
        "matta"),
    experiment_id: Annotated[str | None, typer.Option("--experiment-id", help="KFP experiment id (skips the "
                                                                              "lookup by name).")] = None,
    name: Annotated[str, typer.Option("--name", help="Recurring run name.")] = "matta-nightly",
    param: Annotated[list[str], typer.Option("--param", help="Pipeline parameter key=value (repeatable).")] = [],  # noqa: B006
    local: Annotated[bool, typer.Option("--local", help="Run the schedule here instead of on KFP.")] = False,
    command: Annotated[str | None, typer.Option("--command", help="--local: the command each tick runs, e.g. "
                                                                  "'matta run --config run.yaml'.")] = None,
    max_runs: Annotated[int | None, typer.Option("--max-runs", help="--local: stop after N runs.")] = None,
    log: Annotated[Path, typer.Option("--log", help="--local: JSONL run log.")] = Path("schedule_runs.jsonl"),
) -> None:
    """Create a schedule: a KFP recurring run (--host, --package) or, with --local, a local cron loop."""
    if ctx.invoked_subcommand is not None:
        return
    if cron is None:
        typer.echo("error: give --cron (6 fields, seconds first: '0 0 2 * * *'), or a subcommand: list, pause, "
                   "resume, delete", err=True)
        raise typer.Exit(2)
    with _user_errors():
        if local:
            _schedule_local(cron, command, max_runs, log)
        else:
            _schedule_kfp(cron, host, package, experiment, experiment_id, name, param)


def _schedule_local(cron: str, command: str | None, max_runs: int | None, log: Path) -> None:
    from matta_core.release.local_scheduler import run_schedule

    if not command:
        raise ValueError("--local needs --command, e.g. --command 'matta run --config run.yaml'")
    events = run_schedule(cron, shlex.split(command), log, max_runs=max_runs)
    ended = [e for e in events if e["event"] == "end"]
    skipped = sum(e["event"] == "skipped" for e in events)
    typer.echo(f"{len(ended)} runs ({sum(e['status'] == 'succeeded' for e in ended)} succeeded), {skipped} ticks "
               f"skipped; log: {log}")


def _schedule_kfp(cron: str, host: str | None, package: Path | None, experiment: str, experiment_id: str | None,
                  name: str, param: list[str]) -> None:
    from matta_core.release.cron import parse_cron
    from matta_core.release.schedule import create_schedule, kfp_client, recurring_run_request, resolve_experiment_id

    parse_cron(cron)  # fail on a bad cron before contacting the cluster
    if host is None or package is None:
        raise ValueError("a KFP schedule needs --host and --package (compiled pipeline); or use --local")
    if not package.is_file():
        raise FileNotFoundError(f"pipeline package {package} does not exist; compile the pipeline first")
    client = kfp_client(host)
    exp_id = experiment_id or resolve_experiment_id(client, experiment)
    request = recurring_run_request(package_path=package, experiment_id=exp_id, job_name=name, cron=cron,
                                    params=parse_overrides(param))
    typer.echo(f"recurring run {create_schedule(client, request)} created: {name!r}, cron {cron!r} (UTC), "
               "max_concurrency=1, no_catchup=true")


def _on_cluster(host: str, action: Callable[[Any], Any]) -> Any:
    from matta_core.release.schedule import kfp_client

    return action(kfp_client(host))


@schedule_app.command("list")
def schedule_list(host: HostOption, experiment_id: Annotated[str | None, typer.Option("--experiment-id")] = None
                  ) -> None:
    """List recurring runs: id, name, status, cron."""
    from matta_core.release.schedule import list_schedules

    for row in _on_cluster(host, lambda c: list_schedules(c, experiment_id)):
        typer.echo(f"{row['id']}  {row['name']}  {row['status']}  cron={row['cron']!r}  "
                   f"max_concurrency={row['max_concurrency']}  no_catchup={row['no_catchup']}")


@schedule_app.command("pause")
def schedule_pause(recurring_run_id: str, host: HostOption) -> None:
    """Disable a recurring run (it keeps its definition; resume re-enables it)."""
    from matta_core.release.schedule import pause_schedule

    _on_cluster(host, lambda c: pause_schedule(c, recurring_run_id))
    typer.echo(f"paused {recurring_run_id}")


@schedule_app.command("resume")
def schedule_resume(recurring_run_id: str, host: HostOption) -> None:
    """Re-enable a paused recurring run (no catch-up of the missed ticks)."""
    from matta_core.release.schedule import resume_schedule

    _on_cluster(host, lambda c: resume_schedule(c, recurring_run_id))
    typer.echo(f"resumed {recurring_run_id}")


@schedule_app.command("delete")
def schedule_delete(recurring_run_id: str, host: HostOption) -> None:
    """Delete a recurring run (runs it already started are kept)."""
    from matta_core.release.schedule import delete_schedule

    _on_cluster(host, lambda c: delete_schedule(c, recurring_run_id))
    typer.echo(f"deleted {recurring_run_id}")
