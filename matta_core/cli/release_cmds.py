"""`matta promote`, `matta rollback`, `matta models list` and `matta schedule`: the release stage by hand.

All registry commands take ``--tracking-uri`` (default: ``MLFLOW_TRACKING_URI``; neither set is an error, and a
sqlite store must exist: see `matta_core.cli.registry_store`).
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
from matta_core.cli.common import ConfigOption, SetOption, load_config, parse_overrides
from matta_core.cli.errors import fail
from matta_core.cli.registry_store import registry_client

TrackingUriOption = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow tracking URI, e.g. sqlite:///outputs/<name>/mlflow.db (default: "
                           "MLFLOW_TRACKING_URI). A sqlite file that does not exist is refused, not created.")]
HostOption = Annotated[str, typer.Option("--host", help="KFP API endpoint, e.g. http://localhost:8080.")]

models_app = typer.Typer(help="Registered models of the size classes.", no_args_is_help=True)
schedule_app = typer.Typer(help="Scheduled pipeline runs: a KFP recurring run, or a local cron loop (--local).")
app.add_typer(models_app, name="models")
app.add_typer(schedule_app, name="schedule")


@contextmanager
def _user_errors(*also: type[Exception]) -> Iterator[None]:
    """Errors a user can fix (bad version, reserved alias, held lock, bad cron; `also`) as one line and exit 2.

    Wider than the CLI-wide `matta_core.cli.errors.EXPECTED_ERRORS`: inside these commands a ValueError or a
    missing file comes from what the user typed, not from a bug."""
    from matta_core.release.cron import CronError
    from matta_core.release.lock import LockLostError, LockTimeoutError
    from matta_core.release.registry import AliasRaceError

    try:
        yield
    except (ValueError, CronError, LockTimeoutError, LockLostError, AliasRaceError, FileNotFoundError,
            *also) as error:
        fail(error)


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
        change = do_promote(registry_client(tracking_uri), model, to=to, version=version, by=by)
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
        change = do_rollback(registry_client(tracking_uri), model, by=by)
    typer.echo(change.describe())


@models_app.command("list")
def models_list(
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only models whose name starts with this.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Size classes with their champion, challenger and previous versions and key metrics."""
    from matta_core.release.promote import format_models_table, list_models

    with _user_errors():
        summaries = list_models(registry_client(tracking_uri), prefix)
    if as_json:
        typer.echo(json.dumps([s.__dict__ for s in summaries], indent=2, sort_keys=True))
    else:
        typer.echo(format_models_table(summaries))


@schedule_app.callback(invoke_without_command=True)
def schedule(
    ctx: typer.Context,
    cron: Annotated[str | None, typer.Option("--cron", help="6-field cron, seconds first, UTC: '0 0 2 * * *'.")] = None,
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006 - typer reads the default, it is never mutated
    backend: Annotated[str, typer.Option("--backend", help="kfp (a Kubeflow Pipelines recurring run) or vertex (a "
                                                           "Vertex AI pipeline schedule).")] = "kfp",
    host: Annotated[str | None, typer.Option("--host", envvar="KF_PIPELINES_ENDPOINT", help="kfp: API endpoint "
                                             "(default: through the kube config's Kubernetes API).")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="kfp: your profile namespace on a multi-user "
                                                                      "Kubeflow.")] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="KF_PIPELINES_TOKEN", help="kfp: bearer token.")] = (
        None),
    kube_context: Annotated[str | None, typer.Option("--kube-context", help="kfp, without --host: the kube config "
                                                                            "context.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="vertex: Google Cloud project.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="vertex: Vertex AI region.")] = None,
    service_account: Annotated[str | None, typer.Option("--service-account", help="vertex: service account the "
                                                                                  "runs' tasks run as.")] = None,
    network: Annotated[str | None, typer.Option("--network", help="vertex: VPC to peer with.")] = None,
    label: Annotated[list[str], typer.Option("--label", help="vertex: label key=value (repeatable).")] = [],  # noqa: B006
    image: Annotated[str | None, typer.Option("--image", help="Every task's image (default: cluster.image, else "
                                                              "$MATTA_IMAGE).")] = None,
    package: Annotated[Path | None, typer.Option("--package", help="Schedule this compiled pipeline YAML instead "
                                                                   "of compiling --config.")] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="kfp: experiment name (created if missing).")] = (
        "matta"),
    experiment_id: Annotated[str | None, typer.Option("--experiment-id", help="kfp: experiment id (skips the "
                                                                              "lookup by name).")] = None,
    name: Annotated[str, typer.Option("--name", help="Schedule name.")] = "matta-nightly",
    param: Annotated[list[str], typer.Option("--param", help="Pipeline parameter key=value, over the config's "
                                                             "(repeatable).")] = [],  # noqa: B006
    local: Annotated[bool, typer.Option("--local", help="Run the schedule here instead of on a cluster.")] = False,
    command: Annotated[str | None, typer.Option("--command", help="--local: the command each tick runs, e.g. "
                                                                  "'matta run --config run.yaml'.")] = None,
    max_runs: Annotated[int | None, typer.Option("--max-runs", help="--local: stop after N runs.")] = None,
    log: Annotated[Path, typer.Option("--log", help="--local: JSONL run log.")] = Path("schedule_runs.jsonl"),
) -> None:
    """Create a schedule of the pipeline compiled from --config (or --package): a KFP recurring run, a Vertex AI
    schedule (--backend vertex), or with --local a local cron loop. At most one run at a time, no catch-up."""
    if ctx.invoked_subcommand is not None:
        return
    if cron is None:
        typer.echo("error: give --cron (6 fields, seconds first: '0 0 2 * * *'), or a subcommand: list, pause, "
                   "resume, delete", err=True)
        raise typer.Exit(2)
    if local:
        with _user_errors():
            _schedule_local(cron, command, max_runs, log)
        return
    from matta_core.image import ImageTagError
    from pipelines.vertex import VertexError

    with _user_errors(ImageTagError, VertexError):
        _check_cron_option(cron)  # a bad cron fails before the config is read or anything compiled or contacted
        params = parse_overrides(param)
        if backend == "kfp":
            from pipelines.submit import KfpTarget, schedule_pipeline

            # --package alone schedules that YAML with --param only; with --config, the config's values too.
            run_config = None if package is not None and config is None else load_config(config, set_)
            made = schedule_pipeline(KfpTarget(host, namespace, token, kube_context), cron=cron, name=name,
                                     experiment=experiment, experiment_id=experiment_id, config=run_config,
                                     package=package, params=params, image=image)
            typer.echo(f"recurring run {made} created: {name!r}, cron {cron!r} (UTC), max_concurrency=1, "
                       "no_catchup=true")
        elif backend == "vertex":
            from pipelines.vertex import schedule_vertex, vertex_cron, vertex_target

            vertex_expression = vertex_cron(cron)  # Vertex's own rule (whole minutes) before any other check
            where = vertex_target(project, region, service_account=service_account, network=network, labels=label)
            # Vertex always needs the config: its pipeline_root is where the runs write, even for --package.
            made = schedule_vertex(where, cron=cron, name=name, config=load_config(config, set_), package=package,
                                   params=params, image=image)
            typer.echo(f"Vertex AI schedule {made} created: {name!r}, cron {vertex_expression!r}, "
                       "max_concurrent_run_count=1")
        else:
            raise ValueError(f"--backend {backend!r}: choose kfp or vertex")


def _check_cron_option(cron: str) -> None:
    from matta_core.release.cron import CronError, parse_cron

    try:
        parse_cron(cron)
    except CronError as error:
        raise CronError(f"--cron: {error}") from None


def _schedule_local(cron: str, command: str | None, max_runs: int | None, log: Path) -> None:
    from matta_core.release.local_scheduler import run_schedule

    if not command:
        raise ValueError("--local needs --command, e.g. --command 'matta run --config run.yaml'")
    events = run_schedule(cron, shlex.split(command), log, max_runs=max_runs)
    ended = [e for e in events if e["event"] == "end"]
    skipped = sum(e["event"] == "skipped" for e in events)
    typer.echo(f"{len(ended)} runs ({sum(e['status'] == 'succeeded' for e in ended)} succeeded), {skipped} ticks "
               f"skipped; log: {log}")


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
