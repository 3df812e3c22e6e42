"""Registry races with REAL concurrent processes against the real MLflow server, and the lock's own behaviour.

The workers meet at a file barrier after importing, so their registry calls start within milliseconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from matta_core.release import tags as RT
from matta_core.release.lock import LockLostError, LockTimeoutError, RegistryLock, lock_name
from matta_core.release.promote import promote
from matta_core.release.registry import ensure_registered_model, get_aliases, register_version, versions_for_run
from matta_core.tracking import log_standalone_model
from tests.release.conftest import TinyModels


@pytest.fixture
def source_uri(server_uri: str, tiny_models: TinyModels) -> str:
    """A logged pyfunc (run-less LoggedModel) that versions can be registered from."""
    import mlflow

    mlflow.set_tracking_uri(server_uri)
    return log_standalone_model(tiny_models.runs["good"].model_dirs["student-8"], "student-8",
                                input_example_texts=["card", "pin"])


def run_workers(script: Path, requests: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    """Start every worker at once, wait for all, return their answers in request order."""
    barrier = tmp / f"barrier-{time.monotonic_ns()}"
    procs = []
    for me, request in enumerate(requests):
        request = {**request, "barrier_dir": str(barrier), "parties": len(requests), "me": me,
                   "out": str(tmp / f"answer-{barrier.name}-{me}.json")}
        procs.append((request, subprocess.Popen([sys.executable, str(script), json.dumps(request)],
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    answers = []
    for request, proc in procs:
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output[-3000:]
        answer = json.loads(Path(request["out"]).read_text())
        assert answer["ok"], answer
        answers.append(answer)
    return answers


def test_parallel_registrations_and_promotions_end_in_a_serial_state(
    server_uri: str, prefix: str, source_uri: str, script_dir: Path, tmp_path: Path
) -> None:
    client = MlflowClient(server_uri)
    name = f"{prefix}-s"
    ensure_registered_model(client, name)
    base = {"tracking_uri": server_uri, "model": name, "action": "register", "source": source_uri}

    # Phase 1: two retries of run A race each other (the idempotency race) while runs B and C register too.
    runs = ["run-A", "run-A", "run-B", "run-C"]
    answers = run_workers(script_dir / "race_worker.py", [{**base, "pipeline_run_id": r} for r in runs], tmp_path)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for run, answer in zip(runs, answers, strict=True):
        by_run.setdefault(run, []).append(answer)
    for run in ("run-A", "run-B", "run-C"):
        assert len(versions_for_run(client, name, run)) == 1, f"{run} has duplicate versions"
    a1, a2 = by_run["run-A"]
    assert a1["version"] == a2["version"] and sorted([a1["created"], a2["created"]]) == [False, True]
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    assert len(versions) == 3
    # Forward-only challenger: the newest version wins whichever process finished last.
    assert get_aliases(client, name) == {"challenger": str(versions[-1])}
    assert sum(a["challenger"] for a in answers) >= 1
    assert not client.search_registered_models(f"name = '{lock_name(name)}'"), "lock left behind"

    # Phase 2: two people promote different versions at the same moment, from a known champion.
    v_a, v_b, v_c = (str(v) for v in versions)
    promote(client, name, version=v_a)
    answers = run_workers(script_dir / "race_worker.py", [
        {**base, "action": "promote", "version": v_b}, {**base, "action": "promote", "version": v_c}], tmp_path)
    final = get_aliases(client, name)
    serial_outcomes = [{"champion": v_c, "previous": v_b}, {"champion": v_b, "previous": v_c}]
    assert final in serial_outcomes, f"{final} is not the result of either serial order"
    first, second = sorted(answers, key=lambda a: a["after"]["champion"] == final["champion"])
    assert first["before"]["champion"] == v_a  # the first saw the original champion ...
    assert second["before"]["champion"] == first["version"]  # ... and the second saw the first's result
    assert not client.search_registered_models(f"name = '{lock_name(name)}'"), "lock left behind"


def test_retry_of_registration_returns_the_same_version(server_uri: str, prefix: str, source_uri: str) -> None:
    client = MlflowClient(server_uri)
    name = f"{prefix}-xs"
    ensure_registered_model(client, name)
    first = register_version(client, name, source_uri, "kfp-run-7", {RT.SIZE_CLASS: "xs"})
    again = register_version(client, name, source_uri, "kfp-run-7", {RT.SIZE_CLASS: "xs"})
    assert first.created and not again.created and again.version == first.version
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    assert client.get_model_version(name, first.version).tags[RT.PIPELINE_RUN_ID] == "kfp-run-7"
    with pytest.raises(ValueError, match="pipeline run id"):
        register_version(client, name, source_uri, "it's", {})


def test_duplicate_left_by_a_crashed_racer_is_resolved_to_the_lowest_version(
    server_uri: str, prefix: str, source_uri: str
) -> None:
    """The interleaving the dedupe handles, made deterministic: two versions of one run exist (both racers created
    before either checked; one died). The next registration keeps the lowest and deletes the other."""
    client = MlflowClient(server_uri)
    name = f"{prefix}-l"
    ensure_registered_model(client, name)
    for _ in range(2):
        client.create_model_version(name, source_uri, tags={RT.PIPELINE_RUN_ID: "kfp-run-9"},
                                    model_id=source_uri.removeprefix("models:/"))
    again = register_version(client, name, source_uri, "kfp-run-9", {})
    assert again.version == "1" and not again.created
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]


def test_held_lock_times_out_naming_the_holder(server_uri: str, prefix: str) -> None:
    client = MlflowClient(server_uri)
    with RegistryLock(client, f"{prefix}-m", owner="alice@host:1"):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match=r"locked by alice@host:1.*delete the registered model"):
            RegistryLock(client, f"{prefix}-m", timeout_s=0.5).acquire()
        assert time.monotonic() - started < 5
    RegistryLock(client, f"{prefix}-m", timeout_s=0).acquire()  # free again after release


def test_expired_lock_of_a_crashed_holder_is_broken(server_uri: str, prefix: str) -> None:
    client = MlflowClient(server_uri)
    crashed = RegistryLock(client, f"{prefix}-m", owner="crashed", lease_s=0.2)
    crashed.acquire()  # never released: its process "died"
    time.sleep(0.3)
    with RegistryLock(client, f"{prefix}-m", timeout_s=5) as lock:
        assert lock.broken_locks == 1
        lock.check()
    with pytest.raises(LockLostError, match="no longer held by crashed"):
        crashed.check()


def test_lock_model_name_is_create_only(server_uri: str, prefix: str) -> None:
    """The primitive the lock relies on: a second create of the same registered model name fails."""
    client = MlflowClient(server_uri)
    client.create_registered_model(f"{prefix}-primitive")
    with pytest.raises(MlflowException) as info:
        client.create_registered_model(f"{prefix}-primitive")
    assert info.value.error_code == "RESOURCE_ALREADY_EXISTS"
