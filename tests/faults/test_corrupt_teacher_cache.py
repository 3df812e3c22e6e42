"""A Teacher cache shard damaged on disk (bytes flipped in its middle, as a bad disk or a broken copy leaves it):
the next run's Teacher step detects it, says so naming the shard, computes that shard again, and the run ends with
the first run's Teacher outputs and accuracies. The damage is done to a copy of the session's cache, so the other
fault tests keep a good one."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matta_core.artifacts.layout import TEACHER_INFO
from matta_core.teachers.cache import load_cached_outputs
from tests.kfp.helpers import run_cli, small_config, write_config

TRAIN = {"epochs": 1, "num_threads": 1, "lr": 1e-2, "baselines": ["ce_only"]}


@pytest.mark.slow
def test_a_corrupt_teacher_cache_shard_is_detected_and_recomputed(  # type: ignore[no-untyped-def]
    tmp_path: Path, teacher_cache: Path, fault_record
) -> None:
    first_config = small_config(tmp_path / "first", teacher_cache, train=TRAIN)
    first = run_cli("run", "--config", str(write_config(tmp_path / "first.yaml", first_config)), "--no-tracking",
                    cwd=tmp_path)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    first_teacher = _teacher_dir(Path(first_config["output_dir"]))
    first_info = json.loads((first_teacher / TEACHER_INFO).read_text())

    # Damage the training split's shard in a copy of the cache: 64 bytes from its middle, inverted.
    cache = tmp_path / "cache-copy"
    shutil.copytree(teacher_cache, cache)
    train_cache = first_info["splits"]["train"]["cache"]
    [shard] = sorted((cache / "teacher_outputs" / train_cache["key"]).glob("shard-*.safetensors"))
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    shard.write_bytes(bytes(data))

    # Into a new folder, without the step cache: the Teacher step runs and reads the damaged copy.
    second_config = small_config(tmp_path / "second", cache, train=TRAIN)
    second = run_cli("run", "--config", str(write_config(tmp_path / "second.yaml", second_config)), "--no-tracking",
                     "--no-cache", cwd=tmp_path)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    [said] = [line for line in output.splitlines() if "teacher cache: corrupt shard, recomputing it: " in line]
    assert f"{shard}: " in said

    second_teacher = _teacher_dir(Path(second_config["output_dir"]))
    second_info = json.loads((second_teacher / TEACHER_INFO).read_text())
    again = second_info["splits"]["train"]["cache"]
    assert (again["key"], again["hits"], again["misses"], again["recomputed"]) == (
        train_cache["key"], train_cache["shards_total"] - 1, 0, 1)
    for split, record in second_info["splits"].items():
        if split != "train":  # the other splits' shards were whole: read from the cache
            assert record["cache"]["pure_hit"], (split, record["cache"])
        assert record["accuracy"] == first_info["splits"][split]["accuracy"], split
        name = f"{split}.safetensors"
        assert (second_teacher / name).read_bytes() == (first_teacher / name).read_bytes(), split
    # The entry on disk is whole again (every shard verifies against the rewritten manifest), and the run's
    # numbers are the first run's.
    repaired, _ = load_cached_outputs(str(shard.parent))
    original, _ = load_cached_outputs(str(teacher_cache / "teacher_outputs" / train_cache["key"]))
    np.testing.assert_array_equal(repaired["logits"], original["logits"])
    assert _accuracies(Path(second_config["output_dir"])) == _accuracies(Path(first_config["output_dir"]))
    # Without what changes from run to run: the log time's milliseconds, the file hashes (safetensors writes its
    # header's keys in no fixed order).
    seen = re.sub(r"\b[0-9a-f]{16}…", "<sha256>…", re.sub(r"(\d{2}:\d{2}:\d{2}),\d{3}\b", r"\1", said))
    fault_record("A corrupt Teacher cache shard under `matta run`", fault="64 bytes flipped in the middle of a "
                 "cached Teacher output shard on disk, then `matta run --no-cache`", sees=seen,
                 kept="the other shards (verified, read); the bad one recomputed and rewritten; Teacher outputs "
                 "and report accuracies equal to the first run's")


def _teacher_dir(out: Path) -> Path:
    [teacher] = out.glob("kfp/matta-*/cache-teacher-outputs/teacher")
    return teacher


def _accuracies(out: Path) -> dict[str, Any]:
    report = json.loads((out / "report" / "report.json").read_text())
    return {row["name"]: row["accuracy"] for row in report["models"]}
