"""Step 5: evaluate one standalone model on the test split: quality and serving cost."""

from __future__ import annotations

import json
from typing import Any

from matta_core import storage
from matta_core.config import DataSection
from matta_core.evaluation.evaluate import evaluate_model
from matta_core.extraction import load_extracted
from matta_core.features import HashedNgramFeaturizer
from matta_core.steps.inputs import load_inputs
from matta_core.steps.layout import EVALUATION


def evaluate_step(
    model_dir: str, prepared_dir: str, out_dir: str, data: DataSection, measure_speed: bool = True, split: str = "test"
) -> dict[str, Any]:
    """Write `evaluation.json` (metrics, params, FLOPs, latency, throughput) for the model in `model_dir`."""
    model, config = load_extracted(model_dir)
    rows = load_inputs(prepared_dir, data).splits[split]
    features = HashedNgramFeaturizer(config.features).transform(rows.texts)
    name = str(config.metadata.get("name", "x".join(map(str, config.hidden_widths))))
    evaluation = evaluate_model(model, features, rows.labels, name=name, measure_speed=measure_speed)
    record = {
        **evaluation.to_dict(),
        "arm": config.metadata.get("arm", "matta"),
        "split": split,
        "model_dir": model_dir,
        # Lineage travels with the numbers, so the report (and its MLflow run) can say what they were measured on.
        "data_content_hash": config.metadata.get("data_content_hash"),
        "teacher_cache_key": config.metadata.get("teacher_cache_key"),
    }
    storage.write_text(storage.join(out_dir, EVALUATION), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
