"""Step 5: evaluate one standalone model on the test split: quality and serving cost."""

from __future__ import annotations

from typing import Any

from matta_core.artifacts.evaluation import write_evaluation
from matta_core.data.section import DataSection
from matta_core.families.classifier.evaluate import evaluate_model
from matta_core.families.classifier.extract import load_extracted
from matta_core.families.classifier.inputs import load_inputs
from matta_core.features import HashedNgramFeaturizer


def evaluate_step(
    model_dir: str, prepared_dir: str, out_dir: str, data: DataSection, measure_speed: bool = True, split: str = "test"
) -> dict[str, Any]:
    """Write `evaluation.json` (metrics, params, bytes on disk and in memory, FLOPs, latency, throughput) for the
    model in `model_dir`."""
    model, config = load_extracted(model_dir)
    rows = load_inputs(prepared_dir, data).splits[split]
    features = HashedNgramFeaturizer(config.features).transform(rows.texts)
    name = str(config.metadata.get("name", "x".join(map(str, config.hidden_widths))))
    evaluation = evaluate_model(model, features, rows.labels, name=name, measure_speed=measure_speed,
                                temperature=config.temperature, model_dir=model_dir)
    return write_evaluation(out_dir, evaluation.to_dict(), config.metadata, model_dir, split)
