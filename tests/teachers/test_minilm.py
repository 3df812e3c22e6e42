"""MiniLMTeacher: identity without a model load, head round trips, and the real encoder on Banking77 (slow)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from matta_core.teachers import MiniLMEncoder, MiniLMTeacher
from matta_core.teachers.cache import cached_predict_with_report
from tests.teachers.helpers import CountingTeacher, banking77


def _fake_embeddings(n: int, num_classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm 384-d points around class centres: stands in for encoder output in fast head tests."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    x = rng.normal(size=(num_classes, 384))[y] + 0.3 * rng.normal(size=(n, 384))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def test_fingerprint_needs_no_model_load_and_requires_a_head() -> None:
    encoder = MiniLMEncoder()
    fp = encoder.fingerprint()
    assert len(fp) == 64 and fp == MiniLMEncoder().fingerprint()
    assert not encoder.is_loaded
    teacher = MiniLMTeacher()
    with pytest.raises(RuntimeError, match="call fit"):
        teacher.fingerprint()
    with pytest.raises(RuntimeError, match="needs a fitted head or num_classes"):
        _ = teacher.output_spec


def test_head_round_trip_identical_logits_and_fingerprint_tracks_head(tmp_path: Path) -> None:
    x, y = _fake_embeddings(80)
    teacher = MiniLMTeacher(c=1.0)
    teacher.fit_embeddings(x, y)
    teacher.save(str(tmp_path / "t"))
    again = MiniLMTeacher.load(str(tmp_path / "t"))
    assert again.fingerprint() == teacher.fingerprint()
    assert again.output_spec == teacher.output_spec
    np.testing.assert_array_equal(
        again.predict_from_embeddings(x)["logits"], teacher.predict_from_embeddings(x)["logits"]
    )
    assert not again.encoder.is_loaded

    refit = MiniLMTeacher(c=0.1)
    refit.fit_embeddings(x, y)
    assert refit.fingerprint() != teacher.fingerprint()
    other_data = MiniLMTeacher(c=1.0)
    other_data.fit_embeddings(*_fake_embeddings(80, seed=1))
    assert other_data.fingerprint() != teacher.fingerprint()


def test_load_refuses_a_head_fitted_on_another_encoder(tmp_path: Path) -> None:
    teacher = MiniLMTeacher()
    teacher.fit_embeddings(*_fake_embeddings(40))
    teacher.save(str(tmp_path / "t"))
    meta_path = tmp_path / "t" / "teacher.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "encoder_fingerprint": "0" * 64}))
    with pytest.raises(ValueError, match="refit the head on this encoder"):
        MiniLMTeacher.load(str(tmp_path / "t"))


@pytest.mark.slow
def test_real_minilm_on_banking77_subset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.perf_counter()
    train_texts, train_y = banking77("train", limit=1500)
    test_texts, test_y = banking77("test", limit=500)
    emb_cache = str(tmp_path / "embeddings")

    teacher = MiniLMTeacher(num_classes=77, embedding_cache_root=emb_cache)
    teacher.fit(train_texts, train_y, data_hash="banking77-sample-1500")
    logits = teacher.predict(test_texts)["logits"]
    accuracy = float((logits.argmax(1) == test_y).mean())
    assert logits.shape == (500, 77) and logits.dtype == np.float32
    assert accuracy > 0.7, f"accuracy {accuracy:.3f} on 500 Banking77 test rows (chance is 1/77)"

    # The training split's embeddings are in memory after fit: predicting it does not encode again.
    def no_encoding(texts):
        raise AssertionError("encoder called for rows fitted on")

    monkeypatch.setattr(teacher.encoder, "predict", no_encoding)
    # The same rows' logits from a 20-row and a 1,500-row product: equal up to the matrix kernel's rounding, which
    # can depend on the batch size (AMD EPYC: ~1e-6); another row's logits would differ by whole units.
    np.testing.assert_allclose(
        teacher.predict(train_texts[:20])["logits"][:, :3], teacher.predict(train_texts)["logits"][:20, :3],
        rtol=0, atol=1e-4,
    )
    monkeypatch.undo()

    # Refitting the head (another C) reads the cached embeddings: the encoder never loads.
    refit = MiniLMTeacher(c=1.0, num_classes=77, embedding_cache_root=emb_cache)
    refit.fit(train_texts, train_y, data_hash="banking77-sample-1500")
    assert not refit.encoder.is_loaded and refit.fingerprint() != teacher.fingerprint()

    # Save/load: identical logits on real text; the cached teacher logits then need no encoder at all.
    teacher.save(str(tmp_path / "teacher"))
    reloaded = MiniLMTeacher.load(str(tmp_path / "teacher"))
    np.testing.assert_array_equal(
        reloaded.predict(test_texts[:32])["logits"], teacher.predict(test_texts[:32])["logits"]
    )
    _, cold = cached_predict_with_report(
        teacher, test_texts, data_hash="banking77-sample", split="test", cache_root=str(tmp_path / "c"), progress=False
    )
    warm_teacher = CountingTeacher(MiniLMTeacher.load(str(tmp_path / "teacher")))
    warm, report = cached_predict_with_report(
        warm_teacher,
        test_texts,
        data_hash="banking77-sample",
        split="test",
        cache_root=str(tmp_path / "c"),
        progress=False,
    )
    assert cold.misses == 1 and report.pure_hit and warm_teacher.calls == []
    assert not warm_teacher.inner.encoder.is_loaded  # type: ignore[attr-defined]
    np.testing.assert_allclose(warm["logits"], logits, atol=1e-5)
    assert time.perf_counter() - started < 90
