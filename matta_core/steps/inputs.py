"""Reading a prepared-data folder the way every step must: same rows, same order, same identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from matta_core.config import DataSection
from matta_core.data import load_prepared

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitRows:
    """One split's texts and labels, and the hash that identifies exactly these rows (the cache key's data part)."""

    name: str
    texts: list[str]
    labels: np.ndarray
    data_hash: str


@dataclass(frozen=True)
class StepInputs:
    """The prepared data as the steps use it: splits (row-limited as configured) and the label names."""

    content_hash: str
    label_names: tuple[str, ...]
    splits: dict[str, SplitRows]


def load_inputs(prepared_dir: str, data: DataSection) -> StepInputs:
    """Load and verify the prepared folder; apply `limit_train_rows` / `limit_test_rows` (first N rows by row id)."""
    prepared = load_prepared(prepared_dir)
    manifest = prepared.manifest
    label_names = tuple(name for name, _ in sorted(manifest.label_map.items(), key=lambda item: item[1]))
    limits = {"train": data.limit_train_rows, "validation": data.limit_test_rows, "test": data.limit_test_rows}
    splits = {}
    for name, frame in prepared.splits.items():
        limit = limits[name]
        if limit is not None:
            frame = frame.iloc[:limit]
        # A row limit makes a different data set: it must not share cache entries with the full one.
        data_hash = manifest.content_hash if limit is None else _sha256(f"{manifest.content_hash}:{name}[:{limit}]")
        splits[name] = SplitRows(name, frame["text"].tolist(), frame["label"].to_numpy(np.int64), data_hash)
    return StepInputs(manifest.content_hash, label_names, splits)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
