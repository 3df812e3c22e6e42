"""The record of runs into a folder: which run a rerun resumes, and pruning that never breaks a cache hit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from kfp import dsl
from kfp.local.cache import LocalCache

from pipelines.run_history import (
    FAILED,
    FINISHED,
    HISTORY_FILE,
    KFP_CACHE_DIR,
    RunHistory,
    RunRecord,
    cache_references,
    prune_checkpoints,
    prune_run_folders,
    run_fingerprint,
)


def test_a_rerun_resumes_only_the_newest_unfinished_run_of_the_same_config_and_code(tmp_path: Path) -> None:
    config = {"train": {"epochs": 2}, "name": "x"}
    same = run_fingerprint(config, "v1")
    assert run_fingerprint({"name": "x", "train": {"epochs": 2}}, "v1") == same  # key order does not matter
    assert run_fingerprint(config, "v2") != same and run_fingerprint({**config, "name": "y"}, "v1") != same
    history = RunHistory(tmp_path)
    assert history.unfinished(same) is None
    history.start(RunRecord("local-a", same, time.time()))  # killed: stays "running"
    assert RunHistory(tmp_path).unfinished(same).run_key == "local-a"  # type: ignore[union-attr]
    assert RunHistory(tmp_path).unfinished(run_fingerprint(config, "v2")) is None
    history.runs[-1].status = FINISHED
    history.save()
    assert RunHistory(tmp_path).unfinished(same) is None
    history.start(RunRecord("local-b", same, time.time(), status=FAILED))
    assert RunHistory(tmp_path).unfinished(same).run_key == "local-b"  # type: ignore[union-attr]


def test_a_damaged_record_is_kept_aside_and_does_not_stop_a_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / HISTORY_FILE).write_text("{not json")
    assert RunHistory(tmp_path).runs == []
    assert (tmp_path / "runs.damaged.json").read_text() == "{not json"
    assert "unreadable" in capsys.readouterr().out


def _run_folder(root: Path, name: str, age_s: float) -> Path:
    folder = root / name / "train-models" / "trained"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w")
    stamp = time.time() - age_s
    os.utime(root / name, (stamp, stamp))
    return folder


def test_pruning_keeps_the_newest_runs_and_every_folder_the_step_cache_points_into(tmp_path: Path) -> None:
    root = tmp_path / "kfp"
    cached = _run_folder(root, "matta-1", age_s=400)  # the oldest, but the step cache still serves its training
    for i, age in ((2, 300), (3, 200), (4, 100), (5, 0)):
        _run_folder(root, f"matta-{i}", age_s=age)
    artifact = dsl.Dataset(name="trained", uri=str(cached), metadata={})
    LocalCache(str(root / KFP_CACHE_DIR)).put("key", {"trained": artifact})  # what kfp.local writes
    assert cache_references(root) == {"matta-1"}
    deleted = prune_run_folders(root, keep=2, current="matta-5")
    assert sorted(deleted) == ["matta-2", "matta-3"]
    assert sorted(p.name for p in root.iterdir()) == [KFP_CACHE_DIR, "matta-1", "matta-4", "matta-5"]
    assert LocalCache(str(root / KFP_CACHE_DIR)).get("key") is not None  # still a hit
    assert prune_run_folders(root, keep=0) == []  # 0 keeps all


def test_checkpoints_not_written_since_the_oldest_kept_run_are_pruned(tmp_path: Path) -> None:
    old, new = tmp_path / "key-old" / "matta", tmp_path / "key-new" / "matta"
    for folder, age in ((old, 1000), (new, 0)):
        folder.mkdir(parents=True)
        (folder / "step-00000010.safetensors").write_bytes(b"c")
        stamp = time.time() - age
        os.utime(folder / "step-00000010.safetensors", (stamp, stamp))
    assert prune_checkpoints(tmp_path, older_than=time.time() - 500) == ["key-old"]
    assert not old.exists() and new.exists()
    assert json.dumps(sorted(p.name for p in tmp_path.iterdir())) == '["key-new"]'
