"""Evaluate servable models: quality on a labelled split plus serving cost, one flat record per model.

`evaluate_widths` extracts each requested width from the nested TA and evaluates the *standalone* model, because
that is what serves: the nested model pays for slicing on every call and carries the full TA's weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from matta_core.evaluation.cost import (
    LatencyStats,
    ModelInputs,
    ParamCount,
    ThroughputStats,
    analytic_flops_per_example,
    measure_latency,
    measure_throughput,
    param_count,
)
from matta_core.evaluation.memory import folder_bytes, resident_bytes, weight_bytes
from matta_core.evaluation.metrics import classification_report
from matta_core.evaluation.pareto import pareto_front
from matta_core.families.classifier.extract import extract
from matta_core.families.classifier.model import NestedClassifier
from matta_core.families.classifier.standalone import StandaloneClassifier
from matta_core.features.batch import FeatureBatch, SparseFeatures
from matta_core.nested.widths import Widths
from matta_core.serving import matta_text_classifier as servable

THROUGHPUT_BATCH_SIZE = 256
#: What `classifier_resident_bytes` runs in its child process (see `matta_core.evaluation.memory.resident_bytes`):
#: the serving module's own loader and one prediction of a one-n-gram example. The warm-up predicts with a toy
#: model of the same module first, so torch's one-off kernel set-up is not charged to the model measured.
RESIDENT_PROBE = """
import torch

def _predict_one(model, dense_columns=0):
    dense = torch.zeros(1, dense_columns) if dense_columns else None
    with torch.inference_mode():
        model(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long), torch.ones(1), dense)

def warmup(module):
    # Save, load and run a toy model: the code a real load runs (safetensors, the loader, the kernels) is then
    # mapped in before the reading, and is not counted as the model's.
    import json, os, tempfile
    from safetensors.torch import save_file

    config = module.ExtractedConfig(num_buckets=8, embed_dim=4, hidden_widths=(2,), num_classes=2,
                                    num_dense_features=0, activation="relu",
                                    features=module.FeaturizerConfig(num_buckets=8))
    with tempfile.TemporaryDirectory() as folder:
        save_file(config.build().state_dict(), os.path.join(folder, module.WEIGHTS_FILE))
        with open(os.path.join(folder, module.CONFIG_FILE), "w") as f:
            f.write(json.dumps(config.to_dict()))
        _predict_one(module.load_classifier(folder)[0])

def run(module, folder):
    model, config = module.load_classifier(folder)
    _predict_one(model, config.num_dense_features)
    return model
"""


@dataclass
class ModelEvaluation:
    """Quality and cost of one standalone model; `to_dict()` gives the flat record logged and plotted."""

    name: str
    widths: Widths
    num_examples: int
    metrics: dict[str, float]
    params: ParamCount
    flops_per_example: float
    avg_active_ngrams: float
    latency: LatencyStats | None = None
    throughput: ThroughputStats | None = None
    on_pareto_front: bool = False
    # Bytes: the tensors held (always known), the saved folder (known when evaluated from one), and the resident
    # memory the model adds to a serving process (measured with the speed, from the folder).
    weight_bytes: int | None = None
    bytes_on_disk: int | None = None
    resident_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Flat keys (`accuracy`, `params`, `bytes_on_disk`, `flops_per_example`, `latency_p50_ms`, ...); speed keys
        (`resident_bytes` among them) are None when speed was not measured, so every record has the same keys."""
        latency, throughput = self.latency, self.throughput
        return {
            "name": self.name,
            "widths": list(self.widths),
            "num_examples": self.num_examples,
            **self.metrics,
            "params": self.params.total,
            "embedding_params": self.params.embedding,
            "dense_params": self.params.dense,
            "weight_bytes": self.weight_bytes,
            "bytes_on_disk": self.bytes_on_disk,
            "resident_bytes": self.resident_bytes,
            "flops_per_example": self.flops_per_example,
            "avg_active_ngrams": self.avg_active_ngrams,
            "latency_p50_ms": None if latency is None else latency.p50_ms,
            "latency_p95_ms": None if latency is None else latency.p95_ms,
            "latency_mean_ms": None if latency is None else latency.mean_ms,
            "throughput_examples_per_s": None if throughput is None else throughput.examples_per_s,
            "throughput_batch_size": None if throughput is None else throughput.batch_size,
            "threads": torch.get_num_threads() if latency is None else latency.threads,
            "on_pareto_front": self.on_pareto_front,
        }


def model_inputs(batch: FeatureBatch) -> ModelInputs:
    """A `FeatureBatch` as the positional arguments of `StandaloneClassifier.forward`."""
    return (batch.ids, batch.offsets, batch.counts, batch.dense)


def speed_rows(num_rows: int, count: int, seed: int = 0) -> np.ndarray:
    """The rows timed for speed: a fixed-seed sample, so every model compared is timed on the same examples.

    A sample rather than the first rows, because splits are often sorted by class and query length varies by class.
    Drawn with replacement only when the split has fewer rows than `count`.
    """
    if num_rows < 1 or count < 1:
        raise ValueError(f"need at least one row and one example to time, got {num_rows} rows, count {count}")
    return np.random.default_rng(seed).choice(num_rows, size=count, replace=count > num_rows)


def predict_logits(model: StandaloneClassifier, features: SparseFeatures, batch_size: int = 1024) -> torch.Tensor:
    """Logits `[len(features), num_classes]` in row order, in eval mode without autograd."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    num_buckets = model.embedding.num_embeddings
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            batch = features.batch(torch.arange(start, min(start + batch_size, len(features))))
            batch.validate(num_buckets, model.num_dense_features)
            outputs.append(model(*model_inputs(batch)))
    return torch.cat(outputs)


def evaluate_model(
    model: StandaloneClassifier,
    features: SparseFeatures,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    batch_size: int = 1024,
    measure_speed: bool = True,
    latency_examples: int = 200,
    throughput_batch_size: int = THROUGHPUT_BATCH_SIZE,
    name: str = "model",
    seed: int = 0,
    temperature: float = 1.0,
    model_dir: str | Path | None = None,
) -> ModelEvaluation:
    """Quality metrics, parameters, analytic FLOPs and (if `measure_speed`) batch-1 latency and batch-256 throughput.

    Bytes: `weight_bytes` always; with `model_dir` (the saved folder `model` was loaded from) also `bytes_on_disk`
    and, if `measure_speed`, `resident_bytes` (`classifier_resident_bytes`: a child process, a few seconds).

    The probability metrics (`nll`, `ece`) are those of the served probabilities, softmax(logits / `temperature`);
    `nll_uncalibrated` and `ece_uncalibrated` are those of the raw logits, so a report shows what calibration did.

    Speed is timed on `speed_rows(len(features), ..., seed)`, the same examples for every model given the same
    features and seed. Threads are whatever the caller set with `torch.set_num_threads`.
    """
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if len(features) == 0:
        raise ValueError("no examples to evaluate: the features are empty")
    if labels.shape != (len(features),):
        raise ValueError(f"labels have shape {labels.shape}, expected ({len(features)},): one label per example")
    logits = predict_logits(model, features, batch_size)
    metrics = classification_report(logits / temperature, labels)
    raw = metrics if temperature == 1.0 else classification_report(logits, labels)
    metrics.update(temperature=temperature, nll_uncalibrated=raw["nll"], ece_uncalibrated=raw["ece"])
    widths = tuple(cast(nn.Linear, block).out_features for block in model.blocks)
    # Active n-grams are the non-zero buckets of each example (duplicates were summed into counts).
    avg_active = float(features.indices.numel()) / len(features)
    evaluation = ModelEvaluation(
        name=name,
        widths=widths,
        num_examples=len(features),
        metrics=metrics,
        params=param_count(model),
        flops_per_example=analytic_flops_per_example(
            widths, model.embedding.embedding_dim, model.num_dense_features, model.head.out_features, avg_active
        ),
        avg_active_ngrams=avg_active,
        weight_bytes=weight_bytes(model),
        bytes_on_disk=None if model_dir is None else folder_bytes(model_dir),
    )
    if measure_speed:
        rows = speed_rows(len(features), latency_examples, seed)
        evaluation.latency = measure_latency(
            model, lambda i: model_inputs(features.batch(rows[i : i + 1])), num_examples=latency_examples
        )
        batch = features.batch(speed_rows(len(features), throughput_batch_size, seed))
        evaluation.throughput = measure_throughput(model, model_inputs(batch))
        if model_dir is not None:
            evaluation.resident_bytes = classifier_resident_bytes(model_dir)
    return evaluation


def classifier_resident_bytes(model_dir: str | Path) -> int:
    """Resident memory (bytes) the model saved in `model_dir` adds to a fresh process that serves it with the
    servable module alone (`matta_core.serving.matta_text_classifier`, imported by file path, as a logged model's
    pyfunc imports its copy): loaded, one prediction made, every weight read once."""
    return resident_bytes(servable.__file__, model_dir, RESIDENT_PROBE)


def width_name(model: NestedClassifier, widths: Widths) -> str:
    """`ta-1024`, `student-64`, or the widths joined by `x` (`512`, `1024x64`) for any other sub-model."""
    joined = "x".join(str(w) for w in widths)
    if tuple(widths) == model.config.ta_widths:
        return f"ta-{joined}"
    if tuple(widths) == model.config.student_widths:
        return f"student-{joined}"
    return joined


def evaluate_widths(
    nested_model: NestedClassifier,
    widths_list: Sequence[Widths],
    features: SparseFeatures,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    **kwargs: Any,
) -> list[ModelEvaluation]:
    """Extract each of `widths_list` from `nested_model` and evaluate the standalone model (see `evaluate_model`,
    which takes the keyword arguments). Models are evaluated one after another, not interleaved; for timing
    comparisons that must resist drifting machine load, see `benchmarks/train_step.py`."""
    if "name" in kwargs:
        raise TypeError("evaluate_widths names each model itself (see width_name); do not pass name")
    evaluations = []
    for widths in widths_list:
        widths = nested_model.check_widths(widths)
        standalone = extract(nested_model, widths)
        evaluations.append(
            evaluate_model(standalone, features, labels, name=width_name(nested_model, widths), **kwargs)
        )
    return evaluations


def mark_pareto(
    evaluations: Sequence[ModelEvaluation], cost: str = "flops_per_example", quality: str = "accuracy"
) -> list[ModelEvaluation]:
    """Set `on_pareto_front` on each evaluation (cost and quality are `to_dict()` keys) and return the front,
    cheapest first."""
    records = [e.to_dict() for e in evaluations]
    for i, record in enumerate(records):
        for key in (cost, quality):
            if record.get(key) is None:
                raise ValueError(
                    f"evaluation {i} ({record['name']}) has no {key!r}; allowed keys with values: "
                    f"{sorted(k for k, v in record.items() if isinstance(v, int | float) and not isinstance(v, bool))}"
                )
    # pareto_front checks the values are finite numbers; records are matched back to evaluations by identity.
    front = [id(r) for r in pareto_front(records, cost, quality)]
    by_record = {id(r): e for r, e in zip(records, evaluations, strict=True)}
    for record, evaluation in zip(records, evaluations, strict=True):
        evaluation.on_pareto_front = id(record) in front
    return [by_record[i] for i in front]
