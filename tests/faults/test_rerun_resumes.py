"""`matta run` killed (driver and steps, SIGKILL) in each step in turn, and started again into the same folder each
time: every attempt resumes the one run. Steps that finished come from the step cache, training continues from
its newest checkpoint, the release registers nothing twice, and the result equals an uninterrupted run's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import RunStatus

from matta_core.release import tags as RT
from matta_core.tracking import tags as T
from pipelines.local_runner import CACHEABLE_TASKS
from tests.faults.helpers import RunningMatta, start_run
from tests.kfp.helpers import run_cli, small_config, write_config

#: The step each attempt is killed in, in pipeline order; the attempt after the last one completes.
KILLED_IN = ("start-run", "prepare-data", "cache-teacher-outputs", "train-models", "extract-and-evaluate",
             "release-models")
ORDER = ("start-run", *CACHEABLE_TASKS, "write-report", "release-models")


def _newest_run_folder(root: Path, before: set[Path]) -> Path | None:
    new = [p for p in root.glob("matta-*") if p.is_dir() and p not in before]
    return max(new, key=lambda p: p.stat().st_mtime) if new else None


@pytest.mark.slow
def test_a_run_killed_in_each_step_resumes_to_the_uninterrupted_result(
    tmp_path: Path, teacher_cache: Path, fault_record, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    # Long enough to kill mid-training: 240 steps of the TA, a checkpoint every 40. The kill lands just after the
    # first checkpoint (step 40), so 200 steps of the TA (~10 s on 2 busy cores) and all of ce_only are still to
    # come; more steps would only make the resumed and the straight runs train longer.
    train = {"steps": 240, "num_threads": 1, "lr": 1e-2, "checkpoint_every": 40, "baselines": ["ce_only"]}
    config = small_config(tmp_path, teacher_cache, train=train)
    path = write_config(tmp_path / "run.yaml", config)
    out, root = Path(config["output_dir"]), Path(config["output_dir"]) / "kfp"
    store = f"sqlite:///{out / 'mlflow.db'}"
    # The same config run once, never interrupted (its own folder, no tracking), to compare the numbers with.
    straight = small_config(tmp_path / "straight", teacher_cache, train=train)
    straight_path = write_config(tmp_path / "straight.yaml", straight)
    uninterrupted: RunningMatta | None = None
    said: list[str] = []
    for attempt, step in enumerate(KILLED_IN, start=1):
        before = set(root.glob("matta-*"))
        running = start_run(path, tmp_path)

        def step_started(step: str = step, before: set[Path] = before) -> bool:
            folder = _newest_run_folder(root, before)
            if folder is None or not (folder / step).is_dir():
                return False
            # Training: strike once a checkpoint exists, so the next attempt has one to continue from.
            if step == "train-models":
                return any((out / "checkpoints").glob("*/matta/step-*"))
            # The release: strike once it registered a version, so the next attempt must not register it again.
            if step == "release-models":
                return bool(MlflowClient(store).search_model_versions(f"tags.`{RT.PIPELINE_RUN_ID}` != ''"))
            return True

        running.wait_for(step_started, 600, f"step {step} (attempt {attempt})")
        running.kill()
        said.append(running.output())
        if step == "train-models":
            # The Teacher cache is complete now (training started after it): the uninterrupted run reads it as the
            # attempts do, and runs beside the remaining attempts (mostly one process at a time) instead of after.
            uninterrupted = start_run(straight_path, tmp_path, "--no-tracking")
            request.addfinalizer(uninterrupted.stop)
        [record] = json.loads((out / "runs.json").read_text())["runs"]
        assert (record["status"], record["attempts"]) == ("running", attempt)
        if attempt > 1:
            assert f"resuming the unfinished run {record['run_key']}" in said[-1]
            assert "taking over the lock left by pid" in said[-1]
            # Every cacheable step before the one the previous attempt was killed in came from the cache.
            earlier = [s for s in CACHEABLE_TASKS if ORDER.index(s) < ORDER.index(KILLED_IN[attempt - 2])]
            folder = _newest_run_folder(root, before)
            assert folder is not None and not any((folder / s).exists() for s in earlier), earlier

    last = run_cli("run", "--config", str(path), cwd=tmp_path)
    output = last.stdout + last.stderr
    assert last.returncode == 0, output[-4000:]
    assert f"(same config and code, attempt {len(KILLED_IN) + 1})" in output
    assert "reused from the step cache (same inputs): " + ", ".join(CACHEABLE_TASKS) in output
    [record] = json.loads((out / "runs.json").read_text())["runs"]
    assert (record["status"], record["attempts"]) == ("finished", len(KILLED_IN) + 1)
    # The attempt after the kill in training said, live, where it continued from (a checkpoint, not step 0).
    training_line = next(line for line in "".join(said).splitlines() if "resuming arm matta from checkpoint" in line)
    assert "(step 0 " not in training_line

    # One MLflow parent run for all attempts, FINISHED; each size class registered once for it.
    client = MlflowClient(store)
    [parent] = client.search_runs([client.get_experiment_by_name(config["name"]).experiment_id],
                                  filter_string=f"tags.`{T.RUN_KEY}` = 'kfp:{record['run_key']}'")
    assert parent.info.run_id == record["parent_run_id"]
    assert parent.info.status == RunStatus.to_string(RunStatus.FINISHED)
    handoffs = list((out / "release").glob("*/ab_handoff.json"))
    assert handoffs
    for handoff_file in handoffs:
        handoff = json.loads(handoff_file.read_text())
        versions = client.search_model_versions(
            f"name = '{handoff['registered_model']}' and tags.`{RT.PIPELINE_RUN_ID}` = '{parent.info.run_id}'")
        assert [str(v.version) for v in versions] == [handoff["challenger"]["version"]]

    # The same numbers as a run that was never interrupted (same config, its own folder, no tracking).
    assert uninterrupted is not None
    assert uninterrupted.wait(900) == 0, uninterrupted.output()[-3000:]
    assert _accuracies(out) == _accuracies(Path(straight["output_dir"]))
    fault_record("SIGKILL of `matta run` in each step, then `matta run` again", fault="driver and every step "
                 "killed at once (kill -9 of the process group), once in each of 6 steps",
                 sees=training_line, kept="every finished step (step cache), training from its newest checkpoint, "
                 "one MLflow run, one registered version per class; result equal to an uninterrupted run")


def _accuracies(out: Path) -> dict[str, float]:
    report = json.loads((out / "report" / "report.json").read_text())
    return {row["name"]: row["accuracy"] for row in report["models"]}
