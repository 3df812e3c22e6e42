"""Resume after a real SIGKILL: a subprocess filling the cache is killed mid-run, a rerun computes only the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from matta_core import storage
from matta_core.teachers.cache import MANIFEST_NAME, cached_predict_with_report, shard_name, teacher_cache_key
from tests.teachers.helpers import REPO, CountingTeacher, sample_texts, tiny_classifier

N_ROWS, SHARD_ROWS, N_SHARDS = 80, 10, 8
SLEEP_S = 0.4  # per shard: the kill lands well inside the run
KILL_AFTER_SHARDS = 3


def _shards_on_disk(entry: Path) -> list[str]:
    return sorted(p.name for p in entry.glob("shard-*.safetensors")) if entry.is_dir() else []


def test_sigkill_mid_run_then_resume_recomputes_only_missing_shards(tmp_path: Path) -> None:
    teacher = tiny_classifier(seed=3)
    teacher.save(str(tmp_path / "teacher"))
    texts = sample_texts(N_ROWS)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    cache_root, calls_log = tmp_path / "cache", tmp_path / "calls.log"
    entry = cache_root / teacher_cache_key(teacher, "kill-test", "train")

    args = [str(tmp_path / "teacher"), str(tmp_path / "texts.json"), str(cache_root), str(calls_log), str(SLEEP_S)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.teachers.slow_teacher_run", *args, str(SHARD_ROWS)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_shards_on_disk(entry)) < KILL_AFTER_SHARDS:
            assert proc.poll() is None, f"worker exited early: {proc.communicate()[1].decode()[-2000:]}"
            assert time.monotonic() < deadline, "worker wrote no shards within 60 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    survived = _shards_on_disk(entry)
    assert KILL_AFTER_SHARDS <= len(survived) < N_SHARDS, survived
    assert not (entry / MANIFEST_NAME).exists(), "the manifest must only appear once every shard exists"
    started = [json.loads(line) for line in calls_log.read_text().splitlines()]
    assert len(started) >= len(survived)  # every surviving shard was computed by the killed process

    resumed = CountingTeacher(tiny_classifier(seed=3))
    outputs, report = cached_predict_with_report(
        resumed,
        texts,
        data_hash="kill-test",
        split="train",
        cache_root=str(cache_root),
        shard_rows=SHARD_ROWS,
        progress=False,
    )
    missing = [i for i in range(N_SHARDS) if shard_name(i) not in survived]
    assert (report.hits, report.misses, report.recomputed) == (len(survived), len(missing), 0)
    assert resumed.calls == [texts[i * SHARD_ROWS : (i + 1) * SHARD_ROWS] for i in missing]
    assert storage.exists(str(entry / MANIFEST_NAME))

    uninterrupted, _ = cached_predict_with_report(
        tiny_classifier(seed=3),
        texts,
        data_hash="kill-test",
        split="train",
        cache_root=str(tmp_path / "fresh"),
        shard_rows=SHARD_ROWS,
        progress=False,
    )
    np.testing.assert_array_equal(outputs["logits"], uninterrupted["logits"])
