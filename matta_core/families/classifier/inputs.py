"""Reading a prepared-data folder the way every step must: same rows, same order, same identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from matta_core import storage
from matta_core.data import MANIFEST_FILE, Manifest, load_prepared
from matta_core.data.section import DataSection
from matta_core.storage.errors import StorageError

if TYPE_CHECKING:
    from matta_core.data import PreparedData
    from matta_core.release.rows import EvalRows

SPLITS = ("train", "validation", "test")
#: Prepared folders this process has loaded and verified, by URI, the newest last; at most `_KEEP` (a task reads one
#: folder, a test session many).
_VERIFIED: dict[str, PreparedData] = {}
_KEEP = 4


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
    prepared = _load_verified(prepared_dir)
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
        # Copies (a new list, a new array): the frames may be served again to the next caller in this process.
        labels = frame["label"].to_numpy(np.int64, copy=True)
        splits[name] = SplitRows(name, frame["text"].tolist(), labels, data_hash)
    return StepInputs(manifest.content_hash, label_names, splits)


def eval_rows(prepared_dir: str, data: DataSection, split: str = "test") -> EvalRows:
    """The labelled rows of `split` the release gate scores models on: texts and gold label names, row-limited as
    `data` says, as the steps read them."""
    from matta_core.release.rows import EvalRows

    inputs = load_inputs(prepared_dir, data)
    rows = inputs.splits[split]
    return EvalRows.from_ids(rows.texts, rows.labels.tolist(), inputs.label_names)


def _load_verified(prepared_dir: str) -> PreparedData:
    """`load_prepared(prepared_dir)`, with the content hash recomputed only when the folder changed since this
    process last verified it.

    The evaluation task loads the same folder once per model (16 times on the default run) and recomputing the
    hash over every row costs ~0.1 s each time. Unchanged means: the manifest the data was verified against, and
    split files whose bytes still have the sha256 it records (what `load_prepared` checks before hashing the
    content), so the frames are the ones a fresh load would give. Anything else, a read error included, is a full
    load, which raises what `load_prepared` raises.
    """
    cached = _VERIFIED.get(prepared_dir)
    if cached is not None and _unchanged(prepared_dir, cached):
        return cached
    prepared = load_prepared(prepared_dir)
    _VERIFIED.pop(prepared_dir, None)
    while len(_VERIFIED) >= _KEEP:
        _VERIFIED.pop(next(iter(_VERIFIED)))
    _VERIFIED[prepared_dir] = prepared
    return prepared


def _unchanged(prepared_dir: str, prepared: PreparedData) -> bool:
    try:
        if Manifest.from_json(storage.read_text(storage.join(prepared_dir, MANIFEST_FILE))) != prepared.manifest:
            return False
        for split in SPLITS:
            entry = prepared.manifest.files[split]
            data = storage.read_bytes(storage.join(prepared_dir, entry["path"]))
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                return False
        return True
    except (OSError, StorageError, ValueError, KeyError, TypeError):  # unreadable: the full load says why
        return False


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
