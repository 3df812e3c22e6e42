"""Evaluating extracted widths: parity with the nested model, cost fields, naming, and Pareto marking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from matta_core.evaluation.metrics import classification_report
from matta_core.families.classifier.evaluate import (
    ModelEvaluation,
    evaluate_model,
    evaluate_widths,
    mark_pareto,
    predict_logits,
    speed_rows,
)
from matta_core.families.classifier.extract import expected_param_count, extract
from matta_core.nested import WidthError
from tests.evaluation.tiny import make_tiny_nested

WIDTHS = [(24, 16), (8, 8), (12, 4), (4, 16)]


def fit_a_little(model, features, labels, steps: int = 150) -> None:
    """A few full-batch CE steps at the TA and the Student, so metrics differ from chance."""
    batch = features.batch(torch.arange(len(features)))
    targets = torch.as_tensor(labels)
    # SGD: it takes the embedding bag's gradients whether they are sparse or dense.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(steps):
        hidden = model.embed(batch)
        loss = sum(F.cross_entropy(model.head_forward(hidden, w), targets) for w in ((24, 16), (8, 8)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def test_metrics_of_each_extracted_width_match_the_nested_model_at_that_width(tiny_nested) -> None:
    model, features, labels = tiny_nested
    fit_a_little(model, features, labels)
    evaluations = evaluate_widths(model, WIDTHS, features, labels, batch_size=3, measure_speed=False)
    batch = features.batch(torch.arange(len(features)))
    for widths, evaluation in zip(WIDTHS, evaluations, strict=True):
        with torch.no_grad():
            expected = classification_report(model(batch, widths), labels)
        for key, value in expected.items():
            assert evaluation.metrics[key] == pytest.approx(value, abs=1e-6), (widths, key)
    assert evaluations[0].metrics["accuracy"] == 1.0  # the TA memorises 8 examples


def test_cost_fields_and_names(tiny_nested) -> None:
    model, features, labels = tiny_nested
    evaluations = evaluate_widths(model, WIDTHS, features, labels, measure_speed=False)
    assert [e.name for e in evaluations] == ["ta-24x16", "student-8x8", "12x4", "4x16"]
    avg_active = features.indices.numel() / len(features)
    for widths, evaluation in zip(WIDTHS, evaluations, strict=True):
        assert evaluation.widths == widths
        assert evaluation.params.total == expected_param_count(model.config, widths)
        assert evaluation.params.embedding == 2**9 * 12
        assert evaluation.avg_active_ngrams == pytest.approx(avg_active)
        h1, h2 = widths
        assert evaluation.flops_per_example == pytest.approx(2 * avg_active * 12 + 2 * (12 * h1 + h1 * h2 + h2 * 4))
        assert evaluation.latency is None and evaluation.throughput is None


def test_speed_is_measured_on_the_standalone_model(tiny_nested) -> None:
    model, features, labels = tiny_nested
    (evaluation,) = evaluate_widths(model, [(8, 8)], features, labels, latency_examples=25, throughput_batch_size=16)
    assert evaluation.latency is not None and evaluation.latency.calls == 25
    assert evaluation.throughput is not None and evaluation.throughput.batch_size == 16
    record = evaluation.to_dict()
    assert record["latency_p50_ms"] > 0 and record["throughput_examples_per_s"] > 0
    assert record["threads"] == torch.get_num_threads()


def test_to_dict_is_flat_with_the_same_keys_with_or_without_speed(tiny_nested) -> None:
    model, features, labels = tiny_nested
    standalone = extract(model, (8, 8))
    fast = evaluate_model(standalone, features, labels, measure_speed=False, name="s").to_dict()
    timed = evaluate_model(standalone, features, labels, latency_examples=5, name="s").to_dict()
    assert set(fast) == set(timed)
    assert {
        "name",
        "widths",
        "accuracy",
        "top5_accuracy",
        "macro_f1",
        "nll",
        "ece",
        "params",
        "dense_params",
        "embedding_params",
        "flops_per_example",
        "latency_p50_ms",
        "throughput_examples_per_s",
        "on_pareto_front",
    } <= set(fast)
    assert fast["latency_p50_ms"] is None and fast["widths"] == [8, 8]


def test_dense_columns_are_fed_to_the_model() -> None:
    model, features, labels = make_tiny_nested(dense=2)
    (evaluation,) = evaluate_widths(model, [(8, 8)], features, labels, measure_speed=False)
    with torch.no_grad():
        expected = classification_report(model(features.batch(torch.arange(len(features))), (8, 8)), labels)
    assert evaluation.metrics["nll"] == pytest.approx(expected["nll"], abs=1e-6)
    assert evaluation.params.dense == expected_param_count(model.config, (8, 8)) - 2**9 * 12


def test_mark_pareto_sets_the_flag_from_to_dict_keys(tiny_nested) -> None:
    model, features, labels = tiny_nested
    evaluations = evaluate_widths(model, WIDTHS, features, labels, measure_speed=False)
    # FLOPs rise 4x16 < 8x8 < 12x4 < TA; hand-set qualities make the Student (8x8) the one dominated point.
    flops = [e.flops_per_example for e in evaluations]
    assert flops[3] < flops[1] < flops[2] < flops[0]
    for evaluation, accuracy in zip(evaluations, [0.9, 0.6, 0.7, 0.65], strict=True):
        evaluation.metrics["accuracy"] = accuracy
    front = mark_pareto(evaluations)
    assert [e.name for e in front] == ["4x16", "12x4", "ta-24x16"]
    assert [e.on_pareto_front for e in evaluations] == [True, False, True, True]
    assert [e.name for e in mark_pareto(evaluations, cost="dense_params")] == ["4x16", "12x4", "ta-24x16"]
    with pytest.raises(ValueError, match="has no 'latency_p50_ms'"):
        mark_pareto(evaluations, cost="latency_p50_ms")


def test_bad_inputs_are_rejected(tiny_nested) -> None:
    model, features, labels = tiny_nested
    standalone = extract(model, (8, 8))
    with pytest.raises(ValueError, match=r"labels have shape \(7,\), expected \(8,\)"):
        evaluate_model(standalone, features, labels[:7], measure_speed=False)
    with pytest.raises(WidthError, match=r"allowed 4\.\.16"):
        evaluate_widths(model, [(8, 32)], features, labels, measure_speed=False)
    with pytest.raises(TypeError, match="do not pass name"):
        evaluate_widths(model, [(8, 8)], features, labels, name="x")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        predict_logits(standalone, features, batch_size=0)


def test_speed_rows_are_deterministic_and_sample_without_replacement_when_possible() -> None:
    rows = speed_rows(1000, 200, seed=3)
    assert np.array_equal(rows, speed_rows(1000, 200, seed=3))
    assert len(set(rows.tolist())) == 200
    assert len(speed_rows(5, 20)) == 20  # fewer rows than wanted: drawn with replacement


def test_evaluation_record_type() -> None:
    assert ModelEvaluation.__dataclass_fields__["on_pareto_front"].default is False
