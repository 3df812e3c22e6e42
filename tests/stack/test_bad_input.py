"""The stack refuses bad input with a clear message and leaves nothing running: a port in use, a PostgreSQL that
does not start (its log's last lines in the message), an MLflow server that does not answer in time."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.tracking.errors import TrackingError
from matta_core.tracking.postgres_server import start_postgres
from matta_core.tracking.production_stack import start_stack
from tests.production_stack import stack_processes_since


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process (this test) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])
        # Still ours and still listening: the stack did not kill or take it.
        assert holder.fileno() != -1 and holder.getsockname()[1]


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A folder PostgreSQL's service user can reach when we run as root (pytest's temp root is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="matta-stack-test-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def settled(started_at: float) -> list[str]:
    """The stack processes started since `started_at` that are still alive after a moment to exit."""
    deadline = time.monotonic() + 5
    while (left := stack_processes_since(started_at)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("option", ["--mlflow-port", "--postgres-port", "--emulator-port"])
def test_port_in_use_is_named_and_nothing_starts(option: str, held_port: int, tmp_path: Path) -> None:
    started_at = time.time()
    result = CliRunner().invoke(app, ["stack", str(tmp_path / "stack"), option, str(held_port)])
    assert result.exit_code == 2, result.output
    assert f"error: port {held_port} on 127.0.0.1 is already in use" in result.output
    assert not (tmp_path / "stack").exists()
    assert settled(started_at) == []


@pytest.mark.slow
def test_postgres_that_does_not_start_shows_its_log_and_stops_everything(tmp_path: Path) -> None:
    started_at = time.time()
    with pytest.raises(TrackingError) as info:
        start_stack(tmp_path, postgres_options={"shared_buffers": "plenty"})
    message = str(info.value)
    assert "pg_ctl start) failed" in message
    assert 'invalid value for parameter "shared_buffers": "plenty"' in message  # from the server's log
    assert settled(started_at) == []
    assert not (tmp_path / "gcs-emulator.log").exists()  # nothing after PostgreSQL was started


def test_foreign_data_folder_is_refused_before_anything_starts(tmp_path: Path) -> None:
    data = tmp_path / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    started_at = time.time()
    with pytest.raises(TrackingError, match="that this stack did not create"):
        start_postgres(tmp_path)
    assert settled(started_at) == []


@pytest.mark.slow
def test_corrupt_data_folder_shows_the_log_lines_and_stops_everything(reachable_dir: Path) -> None:
    """A data folder of this stack whose configuration was damaged: PostgreSQL says why in its log."""
    folder = reachable_dir / "postgres"
    (folder / "data").mkdir(parents=True, mode=0o700)
    (folder / "data" / "PG_VERSION").write_text("15\n")
    (folder / "data" / "postgresql.conf").write_text("this is not a setting\n")
    (folder / "credentials.json").write_text(json.dumps({"superuser_password": "x", "password": "y"}))
    if os.geteuid() == 0:
        shutil.chown(folder / "data", "postgres")
        shutil.chown(folder / "data" / "postgresql.conf", "postgres")
    started_at = time.time()
    with pytest.raises(TrackingError) as info:
        start_postgres(reachable_dir)
    message = str(info.value)
    assert "pg_ctl start) failed" in message and "postgresql.conf" in message
    assert "the last lines of the PostgreSQL log" in message
    assert settled(started_at) == []


@pytest.mark.slow
def test_mlflow_server_that_does_not_answer_in_time_is_stopped_with_everything_else(tmp_path: Path) -> None:
    started_at = time.time()
    result = CliRunner().invoke(app, ["stack", str(tmp_path / "stack"), "--start-timeout", "0.5"])
    assert result.exit_code == 2, result.output
    assert "did not answer /health within 0.5 s and was stopped" in result.output
    assert "the last lines of its log" in result.output
    assert settled(started_at) == [], "a process of the stack outlived the failed start"
