"""The production-like tracking stack for tests: the ``production_stack`` session fixture, and ways to look inside.

One stack per test session (`matta_core.tracking.production_stack`): a private PostgreSQL server, the GCS emulator
with a bucket, and an MLflow server on both (runs and registry in PostgreSQL, artifacts in ``gs://<bucket>/mlflow``
served through the server). Register it from a ``conftest.py``::

    from tests.production_stack import production_stack  # noqa: F401

and use ``production_stack.tracking_uri``. `bucket_objects` and `postgres_rows` read the stores directly, to check
that what MLflow says it kept really is there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matta_core.tracking.production_stack import ProductionStack, start_stack, stop_stack

#: Program names (argv[0]'s base name) a stack runs, and the titles PostgreSQL's own processes take.
STACK_PROGRAMS = ("postgres", "postgres:", "pg_ctl", "initdb", "runuser", "gcp-storage-emulator", "mlflow")


@pytest.fixture(scope="session")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    """A running stack for the whole session; stopped at the end."""
    stack = start_stack(tmp_path_factory.mktemp("production-stack"))
    try:
        yield stack
    finally:
        stop_stack(stack)


def bucket_objects(stack: ProductionStack, prefix: str = "") -> list[str]:
    """Names of the objects in the stack's bucket under `prefix`, listed by google-cloud-storage on the emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": stack.emulator.host})
    return [blob.name for blob in client.list_blobs(stack.bucket, prefix=prefix)]


def postgres_rows(stack: ProductionStack, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of `query` on MLflow's database, read with psycopg2 (not through MLflow)."""
    import psycopg2

    connection = psycopg2.connect(**stack.postgres.connect_kwargs())
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


def stack_processes_since(started_at: float) -> list[str]:
    """``pid cmdline`` of every live process started since `started_at` (epoch seconds) that a stack started from
    this test process may have left: this process's descendants (the MLflow server, its workers, the emulator)
    and PostgreSQL processes. The session's own stack, started earlier, is not listed."""
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime"))
    ticks = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float, list[str]]] = {}  # pid -> (parent, start, argv) of live processes
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # ended while we looked
        if stat[0] != "Z":
            table[int(entry.name)] = (int(stat[1]), boot + int(stat[19]) / ticks, argv)

    def descends_from_us(pid: int) -> bool:
        while pid > 1 and pid in table:
            pid = table[pid][0]
            if pid == os.getpid():
                return True
        return False

    def program(pid: int) -> str:
        argv = table[pid][2]
        return Path(argv[0]).name if argv and argv[0] else ""

    def postmaster(pid: int) -> int:
        """The postmaster a postgres process belongs to (a backend of an older server is not new)."""
        while table[pid][0] in table and program(table[pid][0]).startswith("postgres"):
            pid = table[pid][0]
        return pid

    found = []
    for pid, (_, start, argv) in table.items():
        # Started since then, and ours: a descendant, or a postgres (detached by pg_ctl, so nobody's child of ours)
        # of a server started since then.
        ours = start >= started_at - 1 and (descends_from_us(pid) or (
            program(pid).startswith("postgres") and table[postmaster(pid)][1] >= started_at - 1))
        named = program(pid).split(" ")[0] in STACK_PROGRAMS or any("mlflow" in a or "emulator" in a for a in argv)
        if ours and named:
            found.append(f"{pid} {' '.join(argv).strip()}")
    return found
