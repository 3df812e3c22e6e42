"""Quality metrics: parity with scikit-learn / torch, a hand-computed ECE, and clear input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from matta_core.evaluation.metrics import (
    MetricError,
    accuracy,
    classification_report,
    expected_calibration_error,
    macro_f1,
    nll,
    top_k_accuracy,
)


def two_class_logits(p_first: list[float]) -> np.ndarray:
    """Logits whose softmax is exactly (p, 1 - p) per row."""
    p = np.asarray(p_first)
    return np.log(np.stack([p, 1.0 - p], axis=1))


def test_accuracy_and_top_k_on_a_hand_made_example() -> None:
    logits = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 3.0, 2.0], [1.0, 0.0, 0.0, 5.0]])
    labels = np.array([0, 3, 1])
    assert accuracy(logits, labels) == pytest.approx(1 / 3)
    assert top_k_accuracy(logits, labels, k=1) == pytest.approx(1 / 3)
    assert top_k_accuracy(logits, labels, k=2) == pytest.approx(2 / 3)  # row 1: 3 is second
    assert top_k_accuracy(logits, labels, k=3) == pytest.approx(1.0)  # row 2: 1 ties with 2 at third; index wins
    assert top_k_accuracy(logits, labels, k=50) == 1.0


def test_macro_f1_equals_sklearn_over_present_classes() -> None:
    rng = np.random.default_rng(0)
    num_classes = 12
    # Labels use classes 0..5 only; predictions can hit 0..7; classes 8..11 are absent from both.
    labels = rng.integers(0, 6, size=300)
    logits = rng.normal(size=(300, num_classes))
    logits[:, 8:] -= 100.0
    logits[np.arange(300), labels] += 1.5  # better than chance, so F1 is not trivially tiny
    predictions = logits.argmax(axis=1)
    present = np.union1d(labels, predictions)
    assert set(present) - set(labels), "the example must have a predicted-only class to be a real test"
    expected = f1_score(labels, predictions, average="macro", labels=present)
    assert macro_f1(logits, labels) == pytest.approx(expected, abs=1e-12)
    # Over all C classes scikit-learn would count the absent ones as 0 and report less.
    assert f1_score(labels, predictions, average="macro", labels=np.arange(num_classes), zero_division=0) < expected


def test_nll_matches_torch_and_is_stable_for_huge_logits() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 7)) * 5
    labels = rng.integers(0, 7, size=50)
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert nll(logits, labels) == pytest.approx(expected, rel=1e-12)
    huge = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]])
    assert nll(huge, np.array([0, 0])) == pytest.approx(1e4 / 2)  # a naive softmax gives inf/nan here


def test_ece_matches_a_hand_computation() -> None:
    # confidence, correct?  ->  bin (of 15, (b/15, (b+1)/15])
    #   0.90 right -> 13;  0.92 wrong -> 13;  0.95 wrong -> 14;  0.62 right -> 9
    logits = two_class_logits([0.90, 0.92, 0.95, 0.62])
    labels = np.array([0, 1, 1, 0])
    expected = (
        2 / 4 * abs(0.5 - (0.90 + 0.92) / 2)  # bin 13: accuracy 1/2
        + 1 / 4 * abs(0.0 - 0.95)  # bin 14
        + 1 / 4 * abs(1.0 - 0.62)  # bin 9
    )
    assert expected == pytest.approx(0.5375)
    assert expected_calibration_error(logits, labels) == pytest.approx(expected, abs=1e-12)
    # One bin holding everything reduces ECE to |accuracy - mean confidence|.
    assert expected_calibration_error(logits, labels, num_bins=1) == pytest.approx(abs(0.5 - 3.39 / 4))


def test_report_has_every_metric_and_accepts_torch_inputs() -> None:
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0], [1.0, 0.0, 0.5]], dtype=torch.float16)
    labels = torch.tensor([0, 1, 2])
    report = classification_report(logits, labels)
    assert set(report) == {"accuracy", "top5_accuracy", "macro_f1", "nll", "ece"}
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["top5_accuracy"] == 1.0
    assert all(isinstance(v, float) and math.isfinite(v) for v in report.values())


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (np.zeros((3, 4)), np.zeros(2, dtype=int), "3 rows but labels have 2"),
        (np.zeros((0, 4)), np.zeros(0, dtype=int), "no examples"),
        (np.zeros(4), np.zeros(4, dtype=int), "must be 2-D"),
        (np.zeros((2, 4)), np.array([0, 4]), "label 4 at row 1 is out of range: allowed 0..3"),
        (np.zeros((2, 4)), np.array([-1, 0]), "out of range"),
        (np.zeros((2, 4)), np.array([0.5, 1.0]), "integer class indices"),
        (np.array([[0.0, np.nan], [0.0, 1.0]]), np.array([0, 1]), r"logits\[0, 1\] is nan"),
        (np.array([[0.0, 1.0], [np.inf, 1.0]]), np.array([0, 1]), "must be finite"),
    ],
)
def test_bad_inputs_are_rejected_with_a_clear_message(logits: np.ndarray, labels: np.ndarray, message: str) -> None:
    for metric in (accuracy, top_k_accuracy, macro_f1, nll, expected_calibration_error, classification_report):
        with pytest.raises(MetricError, match=message):
            metric(logits, labels)


def test_bad_k_and_bins_are_rejected() -> None:
    with pytest.raises(MetricError, match="k must be a positive integer"):
        top_k_accuracy(np.zeros((2, 3)), np.array([0, 1]), k=0)
    with pytest.raises(MetricError, match="num_bins"):
        expected_calibration_error(np.zeros((2, 3)), np.array([0, 1]), num_bins=0)
