"""Two `matta run` at once, as a cron overlap or two operators make them.

Into one output folder: the second is refused at once, naming the first, which finishes untouched. Into two
folders on one new MLflow store: the store's first use is serialised (no migration race), both runs release, and
each run's published handoffs name the version that run registered and the aliases the registry held when its
release ended.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from matta_core.release import tags as RT
from pipelines.run_lock import LOCK_FILE
from tests.faults.helpers import start_run
from tests.kfp.helpers import run_cli, small_config, write_config


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_is_refused_at_once(
    tmp_path: Path, teacher_cache: Path, fault_record
) -> None:  # type: ignore[no-untyped-def]
    config = small_config(tmp_path, teacher_cache, train={"epochs": 1, "num_threads": 1, "baselines": ["ce_only"]},
                          widths=[[256], [32]])
    path = write_config(tmp_path / "run.yaml", config)
    lock = Path(config["output_dir"]) / LOCK_FILE
    first = start_run(path, tmp_path)
    first.wait_for(lambda: lock.is_file() and lock.read_text().strip() != "", 120, "the folder's lock")
    started = time.monotonic()
    second = run_cli("run", "--config", str(path), cwd=tmp_path, timeout=120)
    assert second.returncode == 2 and time.monotonic() - started < 60
    assert f"is in use by another matta run: pid {first.proc.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.wait(600) == 0, first.output()[-3000:]
    [record] = json.loads((Path(config["output_dir"]) / "runs.json").read_text())["runs"]
    assert record["status"] == "finished"  # the refused run left no record
    fault_record("Two `matta run` into one output folder", fault="a second run starts while the first runs "
                 "(cron overlap, two operators)", sees=second.stderr.strip().splitlines()[-1],
                 kept="the first run, untouched: it finishes and publishes alone; the second exits 2 at once")


@pytest.mark.slow
def test_two_runs_on_one_new_store_each_hand_off_what_they_registered(
    tmp_path: Path, teacher_cache: Path, fault_record
) -> None:  # type: ignore[no-untyped-def]
    store = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"  # new: both runs' first use races for its creation
    runs = []
    for name in ("a", "b"):
        config = small_config(tmp_path / name, teacher_cache, tracking_uri=store, widths=[[256], [96], [32]],
                              train={"epochs": 2, "num_threads": 1, "lr": 1e-2, "baselines": ["ce_only"]})
        runs.append((config, start_run(write_config(tmp_path / f"{name}.yaml", config), tmp_path)))
    for _, running in runs:
        assert running.wait(900) == 0, running.output()[-4000:]
        assert "alembic" not in running.output().lower()

    client = MlflowClient(store)
    published: dict[str, list[dict]] = {}
    for config, _ in runs:
        out = Path(config["output_dir"])
        [record] = json.loads((out / "runs.json").read_text())["runs"]
        for handoff_file in (out / "release").glob("*/ab_handoff.json"):
            handoff = json.loads(handoff_file.read_text())
            version = client.get_model_version(handoff["registered_model"], handoff["challenger"]["version"])
            # The version this run's handoff names is the one this run registered.
            assert version.tags[RT.PIPELINE_RUN_ID] == record["parent_run_id"]
            published.setdefault(handoff["registered_model"], []).append(handoff)
    assert published, "no size class released"
    for model, handoffs in published.items():
        assert len(handoffs) == 2  # one per run, two versions
        versions = sorted(int(h["challenger"]["version"]) for h in handoffs)
        assert versions[0] != versions[1]
        for handoff in handoffs:
            own, aliased = int(handoff["challenger"]["version"]), int(handoff["registry"]["aliases"]["challenger"])
            # Either this run's version held @challenger when its release ended, or a newer one did, and it says so.
            assert (aliased == own) == handoff["registry"]["challenger_alias"]
            assert aliased >= own
        # The registry ends with @challenger on the newest version, as the handoff of that version says.
        final = client.get_registered_model(model).aliases
        assert int(final["challenger"]) == versions[1]
    lost = [h for hs in published.values() for h in hs if not h["registry"]["challenger_alias"]]
    fault_record("Two runs at once on one new MLflow store", fault="two `matta run` into two folders, one new "
                 "sqlite store, started together", sees=f"each run's ab_handoff.json names its own version; "
                 f"{len(lost)} of {sum(map(len, published.values()))} say a newer version holds @challenger",
                 kept="both runs' versions; each handoff names the version its run registered and the aliases "
                 "when its release ended; no migration race")
