"""Reading a prepared text corpus the way every causal-LM step must: same passages, same order, same identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from matta_core.data.section import DataSection
from matta_core.families.decoder.prepared import load_prepared_text


@dataclass(frozen=True)
class TextRows:
    """One split's passages, and the hash that identifies exactly these passages (the cache key's data part)."""

    name: str
    texts: list[str]
    data_hash: str


@dataclass(frozen=True)
class LMInputs:
    """The prepared corpus as the steps use it: splits, row-limited as configured."""

    content_hash: str
    splits: dict[str, TextRows]


def load_lm_inputs(prepared_dir: str, data: DataSection) -> LMInputs:
    """Load and verify the prepared folder; apply `limit_train_rows` / `limit_test_rows` (the first N passages by row
    id, as `matta_core.families.classifier.inputs.load_inputs` does for the classifier; the test limit applies to
    validation too)."""
    prepared = load_prepared_text(prepared_dir)
    limits = {"train": data.limit_train_rows, "validation": data.limit_test_rows, "test": data.limit_test_rows}
    splits = {}
    for name, texts in prepared.splits.items():
        limit = limits[name]
        if limit is not None:
            texts = texts[:limit]
        # A row limit makes a different data set: it must not share cache entries with the full one.
        data_hash = prepared.content_hash if limit is None else _sha256(f"{prepared.content_hash}:{name}[:{limit}]")
        if not texts:
            raise ValueError(f"the {name} split of {prepared_dir} is empty: the corpus is too small to split three "
                             "ways; give more passages")
        splits[name] = TextRows(name, texts, data_hash)
    return LMInputs(prepared.content_hash, splits)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
