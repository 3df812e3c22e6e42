"""An evaluate step's output, for every model family: one ``evaluation.json`` per model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from matta_core import storage
from matta_core.artifacts.layout import EVALUATION


def write_evaluation(
    out_dir: str, measured: Mapping[str, Any], metadata: Mapping[str, Any], model_dir: str, split: str
) -> dict[str, Any]:
    """`measured` (the family's quality and cost figures) with the model's arm, the split, where the model is, and
    its lineage from the saved model's `metadata`, written to ``<out_dir>/evaluation.json``; returns the record."""
    record = {
        **measured,
        "arm": metadata.get("arm", "matta"),
        "split": split,
        "model_dir": model_dir,
        # Lineage travels with the numbers, so the report (and its MLflow run) can say what they were measured on.
        "data_content_hash": metadata.get("data_content_hash"),
        "teacher_cache_key": metadata.get("teacher_cache_key"),
    }
    storage.write_text(storage.join(out_dir, EVALUATION), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
