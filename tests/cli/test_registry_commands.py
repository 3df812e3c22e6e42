"""`matta promote`, `rollback` and `models list` against a real sqlite MLflow store: a model, version or store that
is not there is one line naming it and the store (exit 2), and no registry command ever creates a store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.release.registry import ensure_registered_model
from matta_core.release.size_classes import SizeClass

MODELS = ("matta-banking77-s", "matta-banking77-xs")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite store holding two size-class models; ``-s`` has versions 1 and 2 (no aliases)."""
    folder = tmp_path_factory.mktemp("registry-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    for name in MODELS:
        ensure_registered_model(client, name, SizeClass(name=name.rsplit("-", 1)[1], max_dense_params=1000))
    (folder / "model").mkdir()
    for _ in range(2):
        client.create_model_version(MODELS[0], str(folder / "model"))
    return uri


def _matta(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"MLFLOW_TRACKING_URI": None, "MATTA_DEBUG": None, **(env or {})})
    return result.exit_code, result.output


def test_promote_of_a_missing_model_names_it_the_store_and_the_models_there(store: str) -> None:
    code, output = _matta("promote", "matta-banking77-m", "--tracking-uri", store)
    assert code == 2
    assert output.strip().splitlines() == [
        f"error: registered model 'matta-banking77-m' does not exist in the tracking store {store}; registered "
        f"models there: {', '.join(MODELS)}"
    ]
    assert not MlflowClient(store).search_registered_models("name = 'matta-banking77-m.lock'")  # no lock left over


def test_rollback_of_a_missing_model_and_promote_of_a_missing_version(store: str) -> None:
    code, output = _matta("rollback", "nope-s", "--tracking-uri", store)
    assert code == 2 and output.startswith("error: registered model 'nope-s' does not exist in the tracking store")
    code, output = _matta("promote", MODELS[0], "--version", "7", "--tracking-uri", store)
    assert code == 2
    assert output.strip() == (f"error: registered model '{MODELS[0]}' has no version '7' in the tracking store "
                              f"{store}; its versions: 1, 2")


def test_the_installed_command_prints_one_line_and_no_traceback(store: str, fault_record) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MATTA_DEBUG")}
    matta = Path(sys.executable).with_name("matta")
    done = subprocess.run([str(matta), "promote", "matta-banking77-m", "--tracking-uri", store],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert said == [
        f"error: registered model 'matta-banking77-m' does not exist in the tracking store {store}; registered "
        f"models there: {', '.join(MODELS)}"
    ]
    fault_record("`matta promote` of a model that is not registered", fault="a mistyped size class "
                 "(matta-banking77-m) given to `matta promote`", sees=said[0], kept="the registry unchanged; "
                 "exit 2, no traceback")


def test_debug_shows_the_traceback(store: str) -> None:
    result = CliRunner().invoke(app, ["--debug", "promote", "matta-banking77-m", "--tracking-uri", store],
                                env={"MATTA_DEBUG": None})
    assert result.exit_code == 1 and type(result.exception).__name__ == "RegistryNotFoundError"


@pytest.mark.parametrize("command", [["models", "list"], ["promote", "matta-banking77-s"],
                                     ["rollback", "matta-banking77-s"]])
def test_registry_commands_without_a_store_refuse_and_create_nothing(  # type: ignore[no-untyped-def]
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_record
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _matta(*command)
    assert code == 2
    assert output.strip() == (
        "error: no MLflow tracking store given: pass --tracking-uri or set MLFLOW_TRACKING_URI (a local `matta run` "
        "records into <output_dir>/mlflow.db, e.g. --tracking-uri sqlite:///outputs/matta-banking77/mlflow.db)")
    assert list(tmp_path.iterdir()) == []
    if command == ["models", "list"]:
        fault_record("`matta models list` without a store", fault="no --tracking-uri and no MLFLOW_TRACKING_URI",
                     sees=output.strip(), kept="no store created (no mlflow.db, no mlruns/ in the working "
                     "folder); exit 2")


@pytest.mark.parametrize("given", ["option", "env"])
def test_a_sqlite_store_that_does_not_exist_is_not_created(given: str, tmp_path: Path) -> None:
    missing = tmp_path / "outputs" / "mlflow.db"
    uri = f"sqlite:///{missing}"
    args, env = (["--tracking-uri", uri], {}) if given == "option" else ([], {"MLFLOW_TRACKING_URI": uri})
    source = "--tracking-uri" if given == "option" else "MLFLOW_TRACKING_URI"
    for command in (["models", "list"], ["promote", "matta-banking77-s"], ["rollback", "matta-banking77-s"]):
        code, output = _matta(*command, *args, env=env)
        assert code == 2
        assert output.strip() == (
            f"error: no MLflow store at {missing} ({source} {uri}): it does not exist, and this command does not "
            "create one; give the mlflow.db a run recorded into (a local `matta run` writes <output_dir>/mlflow.db)")
    assert not missing.exists() and not missing.parent.exists()


def test_models_list_reads_the_store_named_by_the_environment(store: str) -> None:
    code, output = _matta("models", "list", env={"MLFLOW_TRACKING_URI": store})
    assert code == 0, output
    assert [line.split()[0] for line in output.strip().splitlines()[2:]] == list(MODELS)


def test_a_server_that_does_not_answer_is_one_line() -> None:
    code, output = _matta("models", "list", "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2
    assert output.strip().startswith("error: MLflow tracking server at http://127.0.0.1:9 is not reachable")
    assert len(output.strip().splitlines()) == 1
