"""The teacher-output cache on a local folder and on gs:// (real GCS emulator), with a tiny real Teacher."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest

from matta_core import storage
from matta_core.teachers import OutputSpec
from matta_core.teachers.cache import (
    MANIFEST_NAME,
    CorruptShardError,
    cache_key,
    cached_predict,
    cached_predict_with_report,
    load_cached_outputs,
    shard_name,
)
from tests.teachers.helpers import CountingTeacher, predict_in_batches, sample_texts, tiny_classifier

TEXTS = sample_texts(50)
SHARD_ROWS = 16  # 50 rows -> 4 shards, the last one short


def _run(teacher: CountingTeacher, root: str, texts: list[str] = TEXTS, **kw: object):
    return cached_predict_with_report(
        teacher, texts, data_hash="data-1", split="train", cache_root=root, shard_rows=SHARD_ROWS, progress=False, **kw
    )


def _flip_byte(uri: str, offset_from_end: int = 10) -> None:
    data = bytearray(storage.read_bytes(uri))
    data[-offset_from_end] ^= 0xFF
    storage.write_bytes(uri, bytes(data))


def test_rerun_is_a_pure_hit_without_teacher_calls(counting_teacher: CountingTeacher, cache_root: str) -> None:
    cold, cold_report = _run(counting_teacher, cache_root)
    assert (cold_report.hits, cold_report.misses, cold_report.recomputed) == (0, 4, 0)
    assert len(counting_teacher.calls) == 4
    expected = predict_in_batches(counting_teacher.inner, TEXTS, SHARD_ROWS)["logits"]
    np.testing.assert_array_equal(cold["logits"], expected)

    fresh = CountingTeacher(tiny_classifier(seed=0))  # same weights, new object: identity is by content
    warm, warm_report = _run(fresh, cache_root)
    assert fresh.calls == []
    assert warm_report.pure_hit and warm_report.hits == 4 and not warm_report.manifest_written
    np.testing.assert_array_equal(warm["logits"], cold["logits"])


def test_layout_manifest_and_reader(counting_teacher: CountingTeacher, cache_root: str) -> None:
    _, report = _run(counting_teacher, cache_root)
    names = sorted(uri.rsplit("/", 1)[-1] for uri in storage.list_uris(report.uri))
    assert names == [MANIFEST_NAME] + [shard_name(i) for i in range(4)]
    manifest = json.loads(storage.read_text(storage.join(report.uri, MANIFEST_NAME)))
    assert manifest["total_rows"] == 50 and manifest["key"] == report.key
    assert [(s["row_start"], s["row_stop"]) for s in manifest["shards"]] == [(0, 16), (16, 32), (32, 48), (48, 50)]
    assert manifest["key_parts"]["split"] == "train" and manifest["output_spec"]["num_classes"] == 5
    for s in manifest["shards"]:
        assert storage.sha256(storage.join(report.uri, s["file"])) == s["sha256"]

    outputs, read_manifest = load_cached_outputs(report.uri)
    expected = predict_in_batches(counting_teacher.inner, TEXTS, SHARD_ROWS)["logits"]
    np.testing.assert_array_equal(outputs["logits"], expected)
    assert read_manifest.created_at == manifest["created_at"]


def test_changed_shard_bytes_are_detected_reported_and_recomputed(  # type: ignore[no-untyped-def]
    counting_teacher: CountingTeacher, cache_root: str, caplog: pytest.LogCaptureFixture, fault_record
) -> None:
    expected, report = _run(counting_teacher, cache_root)
    bad = storage.join(report.uri, shard_name(2))
    _flip_byte(bad)
    with pytest.raises(CorruptShardError, match="shard-00002"):
        load_cached_outputs(report.uri)  # a reader without the Teacher must refuse, not use it

    counting_teacher.calls.clear()
    with caplog.at_level(logging.WARNING, logger="matta_core.teachers.cache"):
        outputs, again = _run(counting_teacher, cache_root)
    assert (again.hits, again.misses, again.recomputed) == (3, 0, 1)
    assert counting_teacher.calls == [TEXTS[32:48]]
    said = [r.getMessage() for r in caplog.records if "shard-00002.safetensors" in r.getMessage()]
    assert said
    np.testing.assert_array_equal(outputs["logits"], expected["logits"])
    manifest = json.loads(storage.read_text(storage.join(report.uri, MANIFEST_NAME)))
    assert manifest["updated_at"] is not None
    load_cached_outputs(report.uri)  # repaired: verifies cleanly again
    if not cache_root.startswith("gs://"):  # one row; the gs:// case's bucket name is random
        # The file hashes change from run to run (safetensors writes its header's keys in no fixed order).
        fault_record("A Teacher cache shard with a changed byte", fault="one byte of a cached shard flipped on disk",
                     sees=re.sub(r"\b[0-9a-f]{16}…", "<sha256>…", said[0]), kept="the other shards (read, "
                     "verified); the bad one recomputed and the manifest repaired; outputs equal the originals")


def test_resume_without_manifest_computes_only_missing_and_bad_shards(
    counting_teacher: CountingTeacher, cache_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    expected, report = _run(counting_teacher, cache_root)
    # What a killed run leaves, made by hand: no manifest, a missing shard, and a damaged one.
    storage.delete(storage.join(report.uri, MANIFEST_NAME))
    storage.delete(storage.join(report.uri, shard_name(1)))
    _flip_byte(storage.join(report.uri, shard_name(3)), offset_from_end=1)

    counting_teacher.calls.clear()
    with caplog.at_level(logging.WARNING, logger="matta_core.teachers.cache"):
        outputs, again = _run(counting_teacher, cache_root)
    assert (again.hits, again.misses, again.recomputed) == (2, 1, 1)
    assert counting_teacher.calls == [TEXTS[16:32], TEXTS[48:50]]
    assert any("shard-00003.safetensors" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(outputs["logits"], expected["logits"])
    assert storage.exists(storage.join(report.uri, MANIFEST_NAME))


def test_shard_from_other_texts_is_not_used(tmp_path) -> None:
    """Same key, other texts in a shard (no manifest to catch it): the shard's own texts hash does."""
    root = str(tmp_path / "cache")
    teacher = CountingTeacher(tiny_classifier())
    _, report = _run(teacher, root)
    storage.delete(storage.join(report.uri, MANIFEST_NAME))
    other = [*TEXTS[:16], *reversed(TEXTS[16:])]
    teacher.calls.clear()
    _, again = _run(teacher, root, texts=other)
    assert (again.hits, again.recomputed) == (1, 3)


def test_manifest_for_other_texts_is_refused(counting_teacher: CountingTeacher, tmp_path) -> None:
    root = str(tmp_path / "cache")
    _run(counting_teacher, root)
    with pytest.raises(ValueError, match=r"data_hash='data-1'.*content hash"):
        _run(counting_teacher, root, texts=TEXTS[:-1])


def test_unreadable_manifest_is_rebuilt_from_shards(counting_teacher: CountingTeacher, tmp_path) -> None:
    root = str(tmp_path / "cache")
    expected, report = _run(counting_teacher, root)
    storage.write_text(storage.join(report.uri, MANIFEST_NAME), "{not json")
    counting_teacher.calls.clear()
    outputs, again = _run(counting_teacher, root)
    assert again.hits == 4 and counting_teacher.calls == [] and again.manifest_written
    np.testing.assert_array_equal(outputs["logits"], expected["logits"])
    load_cached_outputs(report.uri)


def test_complete_entry_is_read_with_its_own_shard_layout(counting_teacher: CountingTeacher, tmp_path) -> None:
    root = str(tmp_path / "cache")
    expected, _ = _run(counting_teacher, root)
    counting_teacher.calls.clear()
    outputs = cached_predict(
        counting_teacher, TEXTS, data_hash="data-1", split="train", cache_root=root, shard_rows=7, progress=False
    )
    assert counting_teacher.calls == []
    np.testing.assert_array_equal(outputs["logits"], expected["logits"])


def test_key_depends_on_every_part() -> None:
    spec = OutputSpec("class_logits", num_classes=5)
    base = cache_key("fp", "data", spec, "train")
    variants = [
        cache_key("fp2", "data", spec, "train"),
        cache_key("fp", "data2", spec, "train"),
        cache_key("fp", "data", OutputSpec("class_logits", num_classes=6), "train"),
        cache_key("fp", "data", spec, "test"),
    ]
    assert len({base, *variants}) == 5
    assert cache_key("fp", "data", spec, "train") == base
    with pytest.raises(ValueError, match="split"):
        cache_key("fp", "data", spec, "")


def test_another_teacher_gets_another_entry(tmp_path) -> None:
    root = str(tmp_path / "cache")
    _, a = _run(CountingTeacher(tiny_classifier(seed=0)), root)
    other = CountingTeacher(tiny_classifier(seed=1))
    _, b = _run(other, root)
    assert a.key != b.key and b.misses == 4 and len(other.calls) == 4


def test_empty_split_and_bad_outputs(tmp_path) -> None:
    root = str(tmp_path / "cache")
    outputs, report = _run(CountingTeacher(tiny_classifier()), root, texts=[])
    assert outputs["logits"].shape == (0, 5) and report.shards_total == 0

    class WrongShape(CountingTeacher):
        def predict(self, texts):
            return {"logits": super().predict(texts)["logits"][:, :3]}

    with pytest.raises(ValueError, match=r"predict on rows \[0, 16\).*expected float32\[16, 5\]"):
        _run(WrongShape(tiny_classifier()), str(tmp_path / "other"))
