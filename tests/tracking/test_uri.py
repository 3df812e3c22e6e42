"""resolve_tracking_uri and the fail-fast check_tracking_uri (an unreachable server, an unusable sqlite path)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from matta_core.tracking import TrackingError, check_tracking_uri, resolve_tracking_uri
from matta_core.tracking.uri import redact
from tests.mlflow_server import MLflowServer


def test_default_is_sqlite_under_the_output_dir(tmp_path: Path) -> None:
    assert resolve_tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert resolve_tracking_uri("  ", tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"  # empty counts as none


def test_env_is_used_when_no_uri_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert resolve_tracking_uri(None, tmp_path) == "http://mlflow.internal:5000"
    assert resolve_tracking_uri("http://other:80") == "http://other:80"  # an explicit URI wins


def test_relative_sqlite_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///runs/mlflow.db") == f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert resolve_tracking_uri("sqlite:///x.db?timeout=20") == f"sqlite:///{tmp_path}/x.db?timeout=20"
    assert resolve_tracking_uri("store.db") == f"sqlite:///{tmp_path}/store.db"
    assert resolve_tracking_uri(f"sqlite:///{tmp_path}/a.db") == f"sqlite:///{tmp_path}/a.db"


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="private to one process"):
        resolve_tracking_uri("sqlite:///:memory:")


def test_unreachable_server_fails_fast_with_a_clear_message() -> None:
    with socket.socket() as s:  # a port nothing listens on: bind, read the number, close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    expected = (f"MLflow tracking server at {uri} is not reachable (connection refused) — start it, or leave "
                "tracking_uri empty for the embedded sqlite store")
    with pytest.raises(TrackingError) as info:
        check_tracking_uri(uri, timeout=2)
    assert str(info.value) == expected


def test_running_server_passes(mlflow_server: MLflowServer) -> None:
    check_tracking_uri(mlflow_server.uri)
    check_tracking_uri(mlflow_server.uri + "/")


def test_sqlite_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # A path below a regular file can never be created, whoever runs the test (root ignores permission bits).
    uri = resolve_tracking_uri(f"sqlite:///{blocker}/sub/mlflow.db")
    with pytest.raises(TrackingError, match=r"its folder .*a-file/sub cannot be created \(Not a directory\) — pick a "
                                            r"writable location for tracking_uri"):
        check_tracking_uri(uri)


def test_sqlite_path_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").mkdir()
    with pytest.raises(TrackingError, match="exists and is not a file"):
        check_tracking_uri(resolve_tracking_uri(None, tmp_path))


def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    check_tracking_uri(resolve_tracking_uri(None, tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()


def test_other_stores_are_left_to_mlflow() -> None:
    check_tracking_uri("databricks")
    check_tracking_uri("postgresql://user:pw@db/mlflow")


def test_passwords_are_redacted_in_messages() -> None:
    assert redact("https://alice:s3cret@mlflow.example.com") == "https://alice:***@mlflow.example.com"
    assert redact("http://mlflow:5000") == "http://mlflow:5000"
