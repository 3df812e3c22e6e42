"""Serving cost: parameter split, analytic FLOPs, and the latency / throughput measurements."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from matta_core.evaluation.cost import (
    LatencyStats,
    ThroughputStats,
    analytic_flops_per_example,
    measure_latency,
    measure_throughput,
    param_count,
)
from matta_core.families.classifier.evaluate import model_inputs
from matta_core.families.classifier.extract import expected_param_count, extract
from tests.evaluation.tiny import tiny_config


def test_param_count_splits_embedding_from_dense(tiny_nested) -> None:
    model, _, _ = tiny_nested
    standalone = extract(model, (16, 8))
    count = param_count(standalone)
    assert count.total == expected_param_count(model.config, (16, 8))
    assert count.embedding == 2**9 * 12
    assert count.dense == (12 * 16 + 16) + (16 * 8 + 8) + (8 * 4 + 4)
    assert count.to_dict() == {"total": count.total, "embedding": count.embedding, "dense": count.dense}


def test_param_count_skips_frozen_and_counts_tied_weights_once() -> None:
    embedding = nn.Embedding(10, 3)
    head = nn.Linear(3, 10, bias=False)
    head.weight = embedding.weight  # tied: one tensor, 30 parameters
    frozen = nn.Linear(3, 3)
    frozen.requires_grad_(False)
    count = param_count(nn.ModuleList([embedding, head, frozen]))
    assert (count.total, count.embedding, count.dense) == (30, 30, 0)


def test_flops_follow_the_documented_convention() -> None:
    # bag: 2 * 10 n-grams * 12 dims; linears: (12+2)->16, 16->8, 8->4, each 2 * in * out.
    expected = 2 * 10 * 12 + 2 * (14 * 16 + 16 * 8 + 8 * 4)
    assert analytic_flops_per_example((16, 8), 12, 2, 4, 10.0) == expected
    assert analytic_flops_per_example([16, 8], 12, 2, 4, 0.0) == expected - 2 * 10 * 12
    with pytest.raises(ValueError, match="sizes must be positive"):
        analytic_flops_per_example((16, 0), 12, 0, 4, 10.0)
    with pytest.raises(ValueError, match="avg_active_ngrams"):
        analytic_flops_per_example((16,), 12, 0, 4, float("nan"))


def test_latency_and_throughput_respect_the_callers_threads(tiny_nested) -> None:
    model, features, _ = tiny_nested
    standalone = extract(model, model.config.student_widths)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        latency = measure_latency(
            standalone, lambda i: model_inputs(features.batch([i % len(features)])), num_examples=30, warmup=5
        )
        throughput = measure_throughput(
            standalone, model_inputs(features.batch(list(range(len(features))))), repeats=5, warmup=1
        )
        assert torch.get_num_threads() == 1  # measured as set, not changed
    finally:
        torch.set_num_threads(previous)
    assert latency.threads == 1 and latency.calls == 30 and latency.batch_size == 1
    assert 0 < latency.p50_ms <= latency.p95_ms
    assert latency.mean_ms > 0
    assert throughput.batch_size == len(features)  # read from the model's output
    assert throughput.examples_per_s == pytest.approx(len(features) / (throughput.median_batch_ms / 1e3))
    assert set(latency.to_dict()) == {"p50_ms", "p95_ms", "mean_ms", "calls", "threads", "batch_size"}
    assert set(throughput.to_dict()) == {"examples_per_s", "batch_size", "median_batch_ms", "repeats", "threads"}


def test_stats_summarise_known_samples() -> None:
    latency = LatencyStats.from_samples([1_000_000] * 19 + [21_000_000], threads=2)
    assert (latency.p50_ms, latency.mean_ms, latency.threads) == (1.0, 2.0, 2)
    throughput = ThroughputStats.from_samples([10_000_000, 20_000_000, 30_000_000], batch_size=256)
    assert throughput.median_batch_ms == 20.0
    assert throughput.examples_per_s == pytest.approx(256 / 0.02)
    with pytest.raises(ValueError, match="no latency samples"):
        LatencyStats.from_samples([])


def test_measurements_reject_empty_runs(tiny_nested) -> None:
    model, features, _ = tiny_nested
    with pytest.raises(ValueError, match="num_examples must be >= 1"):
        measure_latency(model, lambda i: (features.batch([i]),), num_examples=0)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_throughput(model, (features.batch([0]),), repeats=0)


def test_dense_features_count_in_flops_input_width() -> None:
    config = tiny_config(dense=3)
    assert config.input_dim == 15
    flops = analytic_flops_per_example(config.hidden_widths, config.embed_dim, 3, config.num_classes, 0.0)
    assert flops == 2 * (15 * 24 + 24 * 16 + 16 * 4)
