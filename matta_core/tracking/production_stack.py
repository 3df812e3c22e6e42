"""A production-like tracking stack on one machine: PostgreSQL + the GCS emulator + an MLflow server on both.

The MLflow server keeps runs and the registry in PostgreSQL (as production MLflow does, instead of the embedded
sqlite) and artifacts in ``gs://<bucket>/mlflow`` on the GCS emulator, served through the server (clients need only
the tracking URI). Everything listens on 127.0.0.1 only. Used by ``matta stack`` and the tests' ``production_stack``
fixture. Started in order, stopped in reverse; a failure at any point stops what was already started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from matta_core.tracking.gcs_emulator import EMULATOR_ENV, GCSEmulator, start_emulator, stop_emulator
from matta_core.tracking.local_server import STARTUP_TIMEOUT_S, LocalServer, ensure_port_free, start_server, stop_server
from matta_core.tracking.postgres_server import PostgresServer, start_postgres, stop_postgres

DEFAULT_BUCKET = "matta-mlflow"
#: The variable `matta stack` prints the artifacts bucket under (a convenience for the user's shell, read by no code).
BUCKET_ENV = "MATTA_STACK_BUCKET"


@dataclass
class ProductionStack:
    """A running stack; `environment` is what a client exports to use it."""

    root: Path
    postgres: PostgresServer
    emulator: GCSEmulator
    mlflow: LocalServer
    bucket: str

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.uri

    @property
    def artifacts_destination(self) -> str:
        return f"gs://{self.bucket}/mlflow"

    def environment(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, EMULATOR_ENV: self.emulator.host,
                BUCKET_ENV: f"gs://{self.bucket}"}


def start_stack(root: Path, *, bucket: str = DEFAULT_BUCKET, postgres_port: int | None = None,
                emulator_port: int | None = None, mlflow_port: int | None = None,
                mlflow_startup_timeout_s: float = STARTUP_TIMEOUT_S,
                postgres_options: dict[str, str] | None = None) -> ProductionStack:
    """Start the stack with its state under `root` (``postgres/``, ``gcs/``, ``mlflow.log``) and return it.

    Ports left out are picked free; a port given that is in use is refused before anything starts. Raises
    `TrackingError` naming what failed, with the last lines of its log; nothing started is left running.
    """
    for port, what in ((postgres_port, "PostgreSQL"), (emulator_port, "the GCS emulator"),
                       (mlflow_port, "the MLflow server")):
        if port is not None:
            ensure_port_free(port, what)
    root.mkdir(parents=True, exist_ok=True)
    stops: list[Callable[[], None]] = []
    try:
        postgres = start_postgres(root, port=postgres_port, options=postgres_options)
        stops.append(lambda: stop_postgres(postgres))
        emulator = start_emulator(root / "gcs-emulator.log", data_dir=root / "gcs", port=emulator_port)
        stops.append(lambda: stop_emulator(emulator.process))
        emulator.make_bucket(bucket)
        # The server itself writes the artifacts (proxied): it, not the clients, must find the emulator.
        mlflow = start_server(postgres.sqlalchemy_uri, f"gs://{bucket}/mlflow", root / "mlflow.log", cwd=root,
                              port=mlflow_port, env={EMULATOR_ENV: emulator.host},
                              startup_timeout_s=mlflow_startup_timeout_s)
    except BaseException:
        _run_all(reversed(stops), raise_first=False)  # the error that stopped the start is the one to report
        raise
    return ProductionStack(root, postgres, emulator, mlflow, bucket)


def stop_stack(stack: ProductionStack) -> None:
    """Stop the MLflow server, the emulator and PostgreSQL, in that order; each is stopped even if one fails."""
    _run_all([lambda: stop_server(stack.mlflow.process), lambda: stop_emulator(stack.emulator.process),
              lambda: stop_postgres(stack.postgres)])


def _run_all(stops: Iterable[Callable[[], None]], raise_first: bool = True) -> None:
    """Call every stop; the first error is raised after all have run (one failed stop must not leak the rest)."""
    first: Exception | None = None
    for stop in stops:
        try:
            stop()
        except Exception as error:
            first = first or error
    if first is not None and raise_first:
        raise first
