"""`teacher.shard_rows` decides the shard size of a new Teacher cache entry, for both model families; it is not in
the cache key, so an entry written with another size is read with its own layout (a complete one) or computed
again (shards an unfinished run left), and never read as the wrong rows."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matta_core import storage
from matta_core.artifacts.layout import TEACHER_INFO
from matta_core.config import PipelineConfig
from matta_core.steps import tracked
from matta_core.teachers.cache import MANIFEST_NAME, cached_predict_with_report
from tests.mirror import MIRROR_DIR
from tests.teachers.helpers import CountingTeacher, predict_in_batches, sample_texts, tiny_classifier
from tests.teachers.test_causal_lm import SENTENCES, tiny_lm_dir  # noqa: F401  (the tiny Llama fixture)

OFF = tracked.Tracking()  # no MLflow: the steps alone, as a component runs them untracked


def _run_teacher(config: PipelineConfig, prepared: Path, out: Path) -> dict[str, Any]:
    """The Teacher step as its component runs it; returns its ``teacher.json``."""
    tracked.teacher(str(prepared), str(out), config.teacher, config.data, config.cache_dir, OFF, config.task)
    return json.loads((out / TEACHER_INFO).read_text())


def _manifest(info: dict[str, Any], split: str) -> dict[str, Any]:
    return json.loads(storage.read_text(storage.join(info["splits"][split]["cache"]["uri"], MANIFEST_NAME)))


def _check_layouts(first: dict[str, Any], second: dict[str, Any], shard_rows: int) -> None:
    """`first` wrote shards of `shard_rows` rows; `second` (another shard_rows) read them all, computing nothing."""
    for split, record in first["splits"].items():
        manifest = _manifest(first, split)
        assert manifest["shard_rows"] == shard_rows
        assert [s["row_stop"] - s["row_start"] for s in manifest["shards"][:-1]] == [shard_rows] * (
            len(manifest["shards"]) - 1)
        assert record["cache"]["shards_total"] == -(-record["rows"] // shard_rows)
        again = second["splits"][split]
        assert again["cache_key"] == record["cache_key"]  # the same entry: shard_rows is not in the key
        assert again["cache"]["pure_hit"] and again["cache"]["hits"] == record["cache"]["shards_total"]


def test_classifier_teacher_step_shards_by_teacher_shard_rows(tmp_path: Path) -> None:
    tiny_classifier(num_classes=77).save(str(tmp_path / "teacher-model"))
    base = {"data": {"mirror_dir": str(MIRROR_DIR), "limit_train_rows": 300, "limit_test_rows": 100},
            "teacher": {"spec": {"kind": "safetensors", "path": str(tmp_path / "teacher-model")}, "shard_rows": 64},
            "cache_dir": str(tmp_path / "cache")}
    config = PipelineConfig.parse(base)
    tracked.prepare(config.data, str(tmp_path / "prepared"), OFF, "classification")
    first = _run_teacher(config, tmp_path / "prepared", tmp_path / "teacher-1")
    other = PipelineConfig.parse({**base, "teacher": {**base["teacher"], "shard_rows": 100}})
    second = _run_teacher(other, tmp_path / "prepared", tmp_path / "teacher-2")
    _check_layouts(first, second, 64)
    for split in first["splits"]:  # the same logits, byte for byte
        assert len({(tmp_path / f"teacher-{n}" / f"{split}.safetensors").read_bytes() for n in (1, 2)}) == 1


def test_causal_lm_teacher_step_shards_by_teacher_shard_rows(tmp_path: Path, tiny_lm_dir: Path) -> None:  # noqa: F811
    words = " ".join(SENTENCES).split()
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, size=rng.integers(4, 9))) for _ in range(120)) + "\n")
    base = {"task": "causal_lm", "data": {"source": str(corpus)},
            "teacher": {"spec": {"kind": "causal_lm", "model_path": str(tiny_lm_dir), "max_length": 8, "k": 4},
                        "shard_rows": 10},
            "cache_dir": str(tmp_path / "cache")}
    config = PipelineConfig.parse(base)
    tracked.prepare(config.data, str(tmp_path / "prepared"), OFF, "causal_lm")
    first = _run_teacher(config, tmp_path / "prepared", tmp_path / "teacher-1")
    other = PipelineConfig.parse({**base, "teacher": {**base["teacher"], "shard_rows": 7}})
    second = _run_teacher(other, tmp_path / "prepared", tmp_path / "teacher-2")
    _check_layouts(first, second, 10)
    assert second["evaluation"] == first["evaluation"]


def test_shards_an_unfinished_run_left_with_another_shard_rows_are_computed_again_not_misread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts, root = sample_texts(50), str(tmp_path / "cache")
    teacher = CountingTeacher(tiny_classifier(seed=0))

    def run(shard_rows: int) -> Any:
        return cached_predict_with_report(teacher, texts, data_hash="d", split="train", cache_root=root,
                                          shard_rows=shard_rows, progress=False)

    expected, report = run(16)
    storage.delete(storage.join(report.uri, MANIFEST_NAME))  # as a run killed before its manifest leaves it
    teacher.calls.clear()
    with caplog.at_level(logging.WARNING, logger="matta_core.teachers.cache"):
        outputs, again = run(20)
    assert expected["logits"].shape == outputs["logits"].shape
    np.testing.assert_array_equal(outputs["logits"], predict_in_batches(teacher.inner, texts, 20)["logits"])
    # Shards 0..2 exist but hold rows [0, 16), [16, 32), [32, 48): not this layout's; none is read, none is "corrupt".
    assert (again.hits, again.misses, again.recomputed) == (0, 3, 0)
    assert teacher.calls == [texts[0:20], texts[20:40], texts[40:50]]
    assert not caplog.records
    assert json.loads(storage.read_text(storage.join(report.uri, MANIFEST_NAME)))["shard_rows"] == 20
