"""The real pipeline, twice, through the local scheduler: `matta schedule --local` runs `matta run` the way a user
would, on a tiny config whose two runs share one MLflow sqlite store and one Teacher cache.

Checked from the scheduler's JSONL log: two runs, both succeeded, never overlapping, and the ticks that fell while
run 1 ran were skipped (logged), not queued. Checked from the store: run 1 registered version 1 of every class that
passed its gate; run 2 registered the next version or was rejected, exactly as its own gate decision says.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from matta_core.release import tags as RT
from matta_core.release.local_scheduler import no_overlap
from tests.kfp.helpers import MATTA, cli_env, write_config
from tests.mirror import MIRROR_DIR

#: Seconds between ticks: far shorter than a run (~1 minute), so run 1 spans many ticks that must be skipped,
#: and short enough that waiting for the first tick and for the tick after run 1 costs little (1 s on average).
TICK_SECONDS = 2
CRON = f"*/{TICK_SECONDS} * * * * *"
#: Dense params at embed 32, 77 classes (110 w + 77): width 16 -> 1,837, width 64 -> 7,117. So xs takes the
#: Student, s the TA.
SIZE_CLASSES = [{"name": "xs", "max_dense_params": 2000}, {"name": "s", "max_dense_params": 8000}]
MODEL_PREFIX = "matta-sched-test"


def tiny_config(tmp_path: Path) -> dict[str, Any]:
    """A few hundred Banking77 rows, a small model and only the ``ce_only`` baseline the gate needs: one run in
    about a minute on 2 cores (most of it the MiniLM Teacher on run 1; run 2 reads the Teacher cache)."""
    return {
        "name": MODEL_PREFIX,
        "data": {"mirror_dir": str(MIRROR_DIR), "limit_train_rows": 400, "limit_test_rows": 200},
        "model": {"hidden_widths": [64], "student_widths": [16], "num_buckets": 2**12, "embed_dim": 32},
        # lr 1e-2: a plumbing run of a few dozen steps (the library default is tuned for full runs).
        "train": {"epochs": 3, "num_threads": 1, "lr": 1e-2, "baselines": ["ce_only"]},
        "widths": [[64], [16]],
        "output_dir": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "cache"),
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "measure_speed": False,
        # A non-inferiority margin: a plumbing run's widths need not beat their baseline, so run 1 passes; the
        # gate itself is tested in test_size_classes_and_gate.py.
        "release": {"model_prefix": MODEL_PREFIX, "size_classes": SIZE_CLASSES, "gate": {"min_improvement": -0.2}},
    }


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


@pytest.mark.slow
def test_two_scheduled_pipeline_runs_never_overlap_and_release_as_their_gates_decide(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    write_config(tmp_path / "tiny.yaml", config)
    # As a user with the project's environment active: `matta` in the command is found on PATH.
    env = cli_env() | {"PATH": os.pathsep.join([str(MATTA.parent), os.environ.get("PATH", "")])}
    scheduled = subprocess.run(
        [str(MATTA), "schedule", "--local", "--cron", CRON, "--command", "matta run --config tiny.yaml",
         "--max-runs", "2", "--log", "runs.jsonl"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    output = scheduled.stdout + scheduled.stderr
    assert scheduled.returncode == 0, output[-4000:]

    events = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    starts = {e["run"]: e for e in events if e["event"] == "start"}
    ends = {e["run"]: e for e in events if e["event"] == "end"}
    skipped = [e for e in events if e["event"] == "skipped"]
    assert sorted(starts) == sorted(ends) == [1, 2], events
    if any(end["status"] != "succeeded" for end in ends.values()):
        pytest.fail(f"a scheduled run failed: {list(ends.values())}\n{what_failed(output)}")
    assert all(end["returncode"] == 0 and end["error"] is None for end in ends.values()), ends
    assert f"2 runs (2 succeeded), {len(skipped)} ticks skipped" in scheduled.stdout

    first_started, first_ended = when(starts[1]["at"]), when(ends[1]["ended_at"])
    assert no_overlap(events) and when(starts[2]["at"]) >= first_ended
    # Every tick while run 1 ran is logged as skipped; none of them is run later (no queue, no catch-up): run 2
    # takes the first tick after run 1 ended.
    assert len(skipped) >= (first_ended - first_started).total_seconds() // TICK_SECONDS - 1 >= 1, events
    for tick in skipped:
        assert first_started < when(tick["scheduled_for"]) <= first_ended, tick
        assert tick["reason"] == "run 1 still running"
    assert first_ended < when(starts[2]["scheduled_for"]) <= first_ended + timedelta(seconds=TICK_SECONDS)

    # One Teacher cache: run 2 found every entry run 1 wrote and added none.
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("manifest.json")]
    assert manifests, "run 1 wrote no Teacher cache"
    assert all(when(m["created_at"]) <= first_ended for m in manifests), [m["created_at"] for m in manifests]

    check_registry(MlflowClient(config["tracking_uri"]), tmp_path / "run" / "release" / "release.json")


def what_failed(output: str) -> str:
    """The `error:` lines of the runs and the last traceback: the part of two long pipeline logs worth reading."""
    lines = output.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    last_traceback = max((i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line),
                         default=len(lines) - 20)
    return "\n".join([*errors, *lines[last_traceback:last_traceback + 40]])


def release_runs(client: MlflowClient) -> list[Run]:
    """The release step's MLflow runs in the store, oldest first (each carries its gate decisions as tags)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    marker = RT.gate_tag(SIZE_CLASSES[0]["name"], "passed")
    runs = [run for run in client.search_runs(experiments, max_results=1000) if marker in run.data.tags]
    return sorted(runs, key=lambda run: run.info.start_time)


def check_registry(client: MlflowClient, release_json: Path) -> None:
    """Run 1 registered v1 of every class it passed; run 2 registered the next version or was rejected, as the
    release folder (which run 2 replaced) says."""
    first, second = release_runs(client)
    second_release = json.loads(release_json.read_text())
    assert second_release["status"] == "gated"
    first_passed = {c["name"] for c in SIZE_CLASSES if first.data.tags[RT.gate_tag(c["name"], "passed")] == "true"}
    assert first_passed == {c["name"] for c in SIZE_CLASSES}, first.data.tags

    for size_class in (c["name"] for c in SIZE_CLASSES):
        name = f"{MODEL_PREFIX}-{size_class}"
        versions = client.search_model_versions(f"name = '{name}'")  # a version number is an int here, a str in tags
        by_release_run = {run.info.run_id: [v for v in versions if v.tags.get(RT.RELEASE_RUN_ID) == run.info.run_id]
                          for run in (first, second)}

        [first_version] = by_release_run[first.info.run_id]
        assert str(first_version.version) == "1" and first.data.tags[RT.gate_tag(size_class, "version")] == "1"
        # Each scheduled run is its own pipeline run: run 2 is not mistaken for a retry of run 1.
        assert first_version.tags[RT.PIPELINE_RUN_ID] != second_release["pipeline_run_id"]

        decision = second_release["classes"][size_class]
        assert decision["passed"] == (second.data.tags[RT.gate_tag(size_class, "passed")] == "true"), size_class
        assert decision["version"] == second.data.tags.get(RT.gate_tag(size_class, "version")), size_class
        second_versions = by_release_run[second.info.run_id]
        if decision["passed"]:
            assert decision["failed_checks"] == [] and decision["version"] == "2", decision
            [second_version] = second_versions
            assert str(second_version.version) == "2"
            assert second_version.tags[RT.PIPELINE_RUN_ID] == second_release["pipeline_run_id"]
            assert aliases(client, name) == {"challenger": "2"}
        else:
            assert decision["failed_checks"] and decision["version"] is None, decision
            assert second_versions == [] and [str(v.version) for v in versions] == ["1"]
            assert aliases(client, name) == {"challenger": "1"}


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}
