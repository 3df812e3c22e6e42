"""Shared helpers for Teacher tests: tiny real classifiers, a call-counting wrapper, Banking77 rows."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from matta_core.teachers import OutputSpec, SafetensorsTeacher, Teacher

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
BANKING77 = DATA / "banking77"
WIKI_SENTS = DATA / "wiki_sents" / "all_wiki_sents.txt"


def tiny_classifier(seed: int = 0, *, num_classes: int = 5, dim: int = 64, hidden: int = 16) -> SafetensorsTeacher:
    """A real (random-weight) MLP over hashed n-grams: deterministic, fast, no model files."""
    rng = np.random.default_rng(seed)
    tensors = {
        "fc1.weight": rng.normal(size=(hidden, dim)).astype(np.float32),
        "fc1.bias": rng.normal(size=hidden).astype(np.float32),
        "fc2.weight": rng.normal(size=(num_classes, hidden)).astype(np.float32),
        "fc2.bias": np.zeros(num_classes, dtype=np.float32),
    }
    config = {
        "format": "matta.safetensors_classifier",
        "version": 1,
        "name": f"tiny-{seed}",
        "num_classes": num_classes,
        "features": {"kind": "hashed_ngrams", "dim": dim, "ngram_range": [1, 2]},
        "layers": [
            {"weight": "fc1.weight", "bias": "fc1.bias", "activation": "relu"},
            {"weight": "fc2.weight", "bias": "fc2.bias"},
        ],
    }
    return SafetensorsTeacher(tensors, config)


class CountingTeacher(Teacher):
    """Delegates to a real Teacher and records each predict call's rows (the cache tests count on it)."""

    def __init__(self, inner: Teacher) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[list[str]] = []

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    @property
    def output_spec(self) -> OutputSpec:
        return self.inner.output_spec

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        self.calls.append(list(texts))
        return self.inner.predict(texts)


def sample_texts(n: int) -> list[str]:
    """`n` distinct, realistic short texts (Banking77 train rows)."""
    texts, _ = banking77("train", limit=n)
    return texts


def banking77(split: str, *, limit: int | None = None, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Texts and int64 labels (ids in sorted category order) from the Banking77 mirror.

    With `limit`, a seeded random sample of that many rows: the files are grouped by category, so the first rows
    would cover only a handful of classes.
    """
    categories = sorted(json.loads((BANKING77 / "categories.json").read_text()))
    ids = {c: i for i, c in enumerate(categories)}
    with (BANKING77 / f"{split}.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if limit is not None:
        pick = np.random.default_rng(seed).permutation(len(rows))[:limit]
        rows = [rows[i] for i in sorted(pick)]
    return [r["text"] for r in rows], np.array([ids[r["category"]] for r in rows], dtype=np.int64)


def predict_in_batches(teacher: Teacher, texts: Sequence[str], rows: int) -> dict[str, np.ndarray]:
    """`teacher`'s outputs computed `rows` texts at a time, as the cache computes one shard at a time: what its
    shards must hold exactly. (A single predict over all texts may differ in the last bits: a matrix product's
    kernel, and so its rounding, can depend on the batch size, as on this project's AMD EPYC CI machines.)"""
    parts = [teacher.predict(texts[start:start + rows]) for start in range(0, len(texts), rows)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
