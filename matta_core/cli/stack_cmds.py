"""`matta stack`: a production-like tracking stack on this machine (PostgreSQL, the GCS emulator, MLflow on both).

Exit codes: 0 stopped by Ctrl-C or SIGTERM after a clean start; 1 a part of the stack died while running; 2 it did
not start (a port in use, PostgreSQL or the MLflow server not starting: the message has the log's last lines).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from matta_core.cli.app import app

if TYPE_CHECKING:
    from matta_core.tracking.production_stack import ProductionStack


class _Stop(Exception):
    """SIGTERM arrived: leave the wait loop through the same cleanup as Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@app.command("stack")
def stack(
    folder: Annotated[Path, typer.Argument(
        file_okay=False, help="Where the stack keeps its state (PostgreSQL data, emulator objects, logs); "
                              "started again on the same folder, it finds its runs and artifacts.")] = Path("stack"),
    bucket: Annotated[str, typer.Option(help="The emulator bucket MLflow's artifacts go to "
                                             "(gs://<bucket>/mlflow).")] = "matta-mlflow",
    mlflow_port: Annotated[int | None, typer.Option(help="MLflow server port (default: a free one).")] = None,
    postgres_port: Annotated[int | None, typer.Option(help="PostgreSQL port (default: a free one).")] = None,
    emulator_port: Annotated[int | None, typer.Option(help="GCS emulator port (default: a free one).")] = None,
    start_timeout: Annotated[float, typer.Option(help="Seconds the MLflow server may take to answer.")] = 120.0,
) -> None:
    """Run a production-like tracking stack until Ctrl-C: MLflow on PostgreSQL, artifacts in a gs:// bucket.

    What production MLflow runs on, on 127.0.0.1 only: a private PostgreSQL server (the backend store, instead of
    the embedded sqlite), the GCS emulator with a bucket, and an MLflow server (same version as matta's) that
    keeps artifacts in gs://<bucket>/mlflow and serves them. Prints the environment to export in another shell
    (then `matta run` or the release commands track there), and stops everything on Ctrl-C or SIGTERM.
    """
    from matta_core.tracking.production_stack import start_stack, stop_stack

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        typer.echo(f"starting PostgreSQL, the GCS emulator and the MLflow server under {folder.resolve()} ...")
        running = start_stack(folder.resolve(), bucket=bucket, postgres_port=postgres_port,
                              emulator_port=emulator_port, mlflow_port=mlflow_port,
                              mlflow_startup_timeout_s=start_timeout)
        try:
            typer.echo("stack ready; in another shell:")
            for name, value in running.environment().items():
                typer.echo(f"export {name}={value}")
            if running.postgres.temporary:
                typer.echo(f"note: PostgreSQL runs as {running.postgres.run_as!r}, which cannot reach "
                           f"{folder.resolve()}: its data lives in {running.postgres.folder} until the stack stops")
            typer.echo(f"MLflow UI: {running.tracking_uri}  (logs under {folder.resolve()}); Ctrl-C stops it")
            died = _wait(running)
        except (KeyboardInterrupt, _Stop):
            died = None
        finally:
            typer.echo("stopping the stack ...")
            stop_stack(running)
    except (KeyboardInterrupt, _Stop):  # during the start: start_stack has stopped what it started
        raise typer.Exit(0) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if died is not None:
        typer.echo(f"error: {died}", err=True)
        raise typer.Exit(1)
    typer.echo("stack stopped")


def _wait(running: ProductionStack) -> str | None:
    """Block until a part of the stack exits on its own (returns which) — or a signal ends the wait."""
    from matta_core.tracking.postgres_server import pid_running

    while True:
        if running.mlflow.process.poll() is not None:
            return f"the MLflow server exited (code {running.mlflow.process.returncode}); see {running.mlflow.log_path}"
        if running.emulator.process.poll() is not None:
            return f"the GCS emulator exited; see {running.emulator.log_path}"
        if not pid_running(running.postgres.pid):
            return f"PostgreSQL exited; see {running.postgres.kept_log}"
        time.sleep(1)
