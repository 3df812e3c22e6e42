"""The serving pass of `benchmarks/quality.py`: every saved served model loaded as serving loads it, its bytes,
resident memory, batch-1 latency and batch-256 / text -> label throughput measured side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from quality import Settings, Splits

THROUGHPUT_BATCH_SIZE = 256
# The summary columns a serving measurement fills (None on rows without a saved model).
SERVING_KEYS = ("bytes_on_disk", "resident_bytes", "latency_p50_ms", "latency_p95_ms", "examples_per_s_batch256",
                "text_to_label_examples_per_s")


def _rotated(names: list[str], shift: int) -> list[str]:
    shift %= max(1, len(names))
    return names[shift:] + names[:shift]


def _text_to_label(predictor: Any, texts: list[str]) -> np.ndarray:
    """What a served model does with raw text: featurise, score, calibrated softmax, top label."""
    return predictor.probabilities(texts).argmax(axis=1)


def measure_serving(records: list[dict[str, Any]], splits: Splits, tfidf: Any, settings: Settings,
                    seed: int = 0) -> dict[str, Any]:
    """Bytes, resident memory, batch-1 latency, batch-256 and text -> label throughput of every saved served model.

    Each model is loaded as serving loads it (`TextPredictor`). Sizes first (the resident reading runs in a child
    process), then the timings, side by side: in round r every model is timed once, in an order rotated by r, on
    the same input (batch 1: test row r of a fixed sample; batch 256: one fixed sample of test rows), so load that
    drifts during the pass hits every model alike. Text -> label runs the TF-IDF + LR pipeline in the same rounds,
    from the same raw texts. One thread everywhere (torch and BLAS), as a CPU serving replica would.
    """
    import torch
    from threadpoolctl import threadpool_limits

    from matta_core.evaluation.cost import LatencyStats, ThroughputStats
    from matta_core.evaluation.memory import folder_bytes
    from matta_core.families.classifier.evaluate import classifier_resident_bytes
    from matta_core.serving.matta_text_classifier import TextPredictor

    started = time.perf_counter()
    torch.set_num_threads(1)
    # One entry per saved folder (a reused matta_separate record points at its matta run's folder).
    saved: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("served_dir") and record["served_dir"] not in saved:
            saved[record["served_dir"]] = {key: record[key] for key in ("regime", "arm", "width", "is_ta")}
            saved[record["served_dir"]]["dir"] = record["served_dir"]
    dirs = list(saved)
    for d in dirs:
        saved[d].update(bytes_on_disk=folder_bytes(d), resident_bytes=classifier_resident_bytes(d))
    predictors = {d: TextPredictor(d) for d in dirs}

    rng = np.random.default_rng(seed)
    test = splits.texts["test"]
    batch_texts = [test[i] for i in rng.choice(len(test), THROUGHPUT_BATCH_SIZE)]
    single_texts = [test[i] for i in rng.choice(len(test), max(1, settings.latency_rounds))]

    def as_inputs(predictor: Any, texts: list[str]) -> tuple[Any, ...]:
        indptr, indices, counts = predictor.featurizer.csr(texts)
        return torch.from_numpy(indices), torch.from_numpy(indptr[:-1]), torch.from_numpy(counts)

    # Featurised once per featuriser setting, outside the timed calls: batch 1 and 256 time the model alone.
    inputs: dict[Any, tuple[Any, list[Any]]] = {}
    for predictor in predictors.values():
        if predictor.config.features not in inputs:
            inputs[predictor.config.features] = (as_inputs(predictor, batch_texts),
                                                 [as_inputs(predictor, [t]) for t in single_texts])

    model = {d: predictors[d].model for d in dirs}
    featurised = {d: inputs[predictors[d].config.features] for d in dirs}
    text: dict[str, Callable[[], Any]] = {"tfidf_lr": lambda: tfidf.predict(batch_texts)}
    for d in dirs:
        text[d] = partial(_text_to_label, predictors[d], batch_texts)
    samples: dict[str, dict[str, list[int]]] = {"batch1": {d: [] for d in dirs}, "batch256": {d: [] for d in dirs},
                                                "text": {n: [] for n in text}}

    def timed(fns: dict[str, Callable[[], Any]], kind: str, round_: int) -> None:
        for name in _rotated(list(fns), round_):
            start = time.perf_counter_ns()
            fns[name]()
            samples[kind][name].append(time.perf_counter_ns() - start)

    with threadpool_limits(limits=1), torch.inference_mode():
        for d in dirs:  # warm-up: lazy allocations and cold caches are paid once, before any timing
            model[d](*featurised[d][1][0])
            model[d](*featurised[d][0])
        for fn in text.values():
            fn()
        for r in range(max(settings.latency_rounds, settings.throughput_rounds)):
            if r < settings.latency_rounds:  # the round's example, the same for every model
                timed({d: partial(model[d], *featurised[d][1][r % len(single_texts)]) for d in dirs}, "batch1", r)
            if r < settings.throughput_rounds:
                timed({d: partial(model[d], *featurised[d][0]) for d in dirs}, "batch256", r)
                timed(text, "text", r)

    def per_s(name: str) -> float:
        return len(batch_texts) / (float(np.median(samples["text"][name])) / 1e9)

    models = {}
    for d in dirs:
        latency = LatencyStats.from_samples(samples["batch1"][d], threads=1)
        batched = ThroughputStats.from_samples(samples["batch256"][d], len(batch_texts), threads=1)
        entry = saved[d]
        models[f"{entry['regime']}/{entry['arm']}/w{entry['width']}"] = {
            **entry, "latency_p50_ms": latency.p50_ms, "latency_p95_ms": latency.p95_ms,
            "latency_mean_ms": latency.mean_ms, "examples_per_s_batch256": batched.examples_per_s,
            "text_to_label_examples_per_s": per_s(d)}
    return {
        "threads": 1, "batch_size": len(batch_texts), "latency_rounds": settings.latency_rounds,
        "throughput_rounds": settings.throughput_rounds, "models": models,
        "tfidf_lr": {"text_to_label_examples_per_s": per_s("tfidf_lr")},
        "what": {
            "bytes_on_disk": "the saved folder (model.safetensors + config.json)",
            "resident_bytes": "RSS that loading + one prediction add to a warm process with the serving code",
            "latency_p50_ms/p95": "one model call at batch 1 on featurised input; percentiles over rounds",
            "examples_per_s_batch256": "one model call at batch 256 on featurised input; median over rounds",
            "text_to_label_examples_per_s": "raw text -> predicted label at batch 256, featurisation included "
                                            "(TextPredictor; TF-IDF + LR: pipeline.predict); median over rounds",
        },
        "seconds": time.perf_counter() - started,
    }


def attach_serving(rows: list[dict[str, Any]], serving: dict[str, Any]) -> None:
    """Copy each row's serving measurement (its first seed's saved model) onto the summary row."""
    by_dir = {m["dir"]: m for m in serving["models"].values()}
    for row in rows:
        measured = by_dir.get(row.get("served_dir") or "")
        for key in SERVING_KEYS:
            row[key] = None if measured is None else measured[key]
