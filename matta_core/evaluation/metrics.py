"""Quality metrics of a classifier, computed from its logits and the true labels.

Everything is computed in float64 NumPy from `[n, C]` logits (NumPy array or torch tensor) and `n` integer labels in
`0..C-1`, so the same numbers come out whatever device or dtype the model ran in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# Guo et al. (2017) and most later work use 15 equal-width bins; keeping that makes our ECE comparable with theirs.
ECE_BINS = 15


class MetricError(ValueError):
    """Logits or labels a metric cannot be computed from; the message says what was wrong and what is allowed."""


def _validate(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return `(logits float64 [n, C], labels int64 [n])` or raise `MetricError` naming the problem."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().cpu().double().numpy()
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise MetricError(f"logits must be 2-D [n_examples, n_classes], got shape {logits.shape}")
    if labels.ndim != 1:
        raise MetricError(f"labels must be 1-D [n_examples], got shape {labels.shape}")
    n, num_classes = logits.shape
    if n == 0:
        raise MetricError("no examples: metrics need at least one (logits, label) pair")
    if num_classes < 2:
        raise MetricError(f"logits have {num_classes} class column(s); a classifier needs at least 2")
    if labels.shape[0] != n:
        raise MetricError(f"logits have {n} rows but labels have {labels.shape[0]} entries")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise MetricError(f"labels must be integer class indices, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise MetricError(
            f"label {int(labels[bad[0]])} at row {int(bad[0])} is out of range: allowed 0..{num_classes - 1} "
            f"({bad.size} label(s) out of range)"
        )
    not_finite = ~np.isfinite(logits)
    if not_finite.any():
        row, col = (int(v) for v in np.argwhere(not_finite)[0])
        raise MetricError(
            f"logits[{row}, {col}] is {logits[row, col]}: logits must be finite ({int(not_finite.sum())} value(s) "
            "are NaN or infinite)"
        )
    return logits, labels


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    # Subtracting the row max keeps exp() from overflowing for large logits (and from underflowing to log(0)).
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def accuracy(logits: Any, labels: Any) -> float:
    """Fraction of examples whose arg-max class is the label (ties go to the lowest class index)."""
    logits, labels = _validate(logits, labels)
    return float(np.mean(logits.argmax(axis=1) == labels))


def top_k_accuracy(logits: Any, labels: Any, k: int = 5) -> float:
    """Fraction of examples whose label is among the `k` highest logits.

    A `k` of at least the number of classes gives 1.0. Logits tied with the k-th highest are broken by class index
    (a stable sort), so the result is deterministic.
    """
    logits, labels = _validate(logits, labels)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise MetricError(f"k must be a positive integer, got {k!r}")
    k = min(int(k), logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == labels[:, None]).any(axis=1)))


def macro_f1(logits: Any, labels: Any) -> float:
    """Unweighted mean of per-class F1 over the classes *present*: in the labels, the predictions, or both.

    A class absent from both has no true positives, false positives or false negatives: its F1 is 0/0. Counting it
    as 0 (scikit-learn's default over all `C` classes) would punish a model for the composition of the evaluation
    set, so such classes are left out. This equals
    `sklearn.metrics.f1_score(labels, predictions, average="macro", labels=<classes present>)`.
    """
    logits, labels = _validate(logits, labels)
    predictions = logits.argmax(axis=1)
    num_classes = logits.shape[1]
    true_pos = np.bincount(labels[predictions == labels], minlength=num_classes)
    predicted = np.bincount(predictions, minlength=num_classes)
    actual = np.bincount(labels, minlength=num_classes)
    present = (predicted + actual) > 0
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual); the denominator is > 0 for every present class.
    f1 = 2.0 * true_pos[present] / (predicted[present] + actual[present])
    return float(f1.mean())


def nll(logits: Any, labels: Any) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits), in nats."""
    logits, labels = _validate(logits, labels)
    log_probs = _log_softmax(logits)
    return float(-log_probs[np.arange(labels.size), labels].mean())


def expected_calibration_error(logits: Any, labels: Any, num_bins: int = ECE_BINS) -> float:
    """Top-1 expected calibration error over `num_bins` equal-width confidence bins.

    Confidence is the top softmax probability; bin b covers `(b/B, (b+1)/B]` (the first bin also holds 0).
    ECE = sum over bins of `|bin| / n * |accuracy(bin) - mean confidence(bin)|`; empty bins contribute nothing.
    """
    logits, labels = _validate(logits, labels)
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise MetricError(f"num_bins must be a positive integer, got {num_bins!r}")
    probs = np.exp(_log_softmax(logits))
    confidence = probs.max(axis=1)
    correct = (logits.argmax(axis=1) == labels).astype(np.float64)
    # searchsorted(side="left") over the inner edges maps (b/B, (b+1)/B] to b, and 0 to bin 0.
    inner_edges = np.linspace(0.0, 1.0, num_bins + 1)[1:-1]
    bins = np.searchsorted(inner_edges, confidence, side="left")
    count = np.bincount(bins, minlength=num_bins)
    gap = np.bincount(bins, weights=correct, minlength=num_bins) - np.bincount(
        bins, weights=confidence, minlength=num_bins
    )
    # sum_b |bin|/n * |acc_b - conf_b| = sum_b |sum_correct_b - sum_conf_b| / n
    return float(np.abs(gap[count > 0]).sum() / labels.size)


def classification_report(logits: Any, labels: Any) -> dict[str, float]:
    """All metrics above, keyed `accuracy`, `top5_accuracy`, `macro_f1`, `nll`, `ece` (15 bins, top-1)."""
    logits, labels = _validate(logits, labels)
    return {
        "accuracy": accuracy(logits, labels),
        "top5_accuracy": top_k_accuracy(logits, labels, k=5),
        "macro_f1": macro_f1(logits, labels),
        "nll": nll(logits, labels),
        "ece": expected_calibration_error(logits, labels),
    }
