"""The logistic-regression head: fitting, absent classes, safetensors + JSON round trip, fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from matta_core.teachers import LinearHead, fit_logistic_head


def _blobs(n_per_class: int = 20, classes: tuple[int, ...] = (0, 1, 2), dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(classes) + 1, dim)) * 3
    y = np.repeat(np.array(classes), n_per_class)
    return (centres[y] + rng.normal(size=(len(y), dim))).astype(np.float32), y


def test_fit_separates_blobs_and_logits_match_sklearn_decision_function() -> None:
    x, y = _blobs()
    head = fit_logistic_head(x, y, c=1.0)
    logits = head.logits(x)
    assert logits.dtype == np.float32 and logits.shape == (60, 3)
    assert (logits.argmax(1) == y).mean() > 0.95


def test_absent_classes_get_finite_low_logits() -> None:
    x, y = _blobs(classes=(0, 2))
    head = fit_logistic_head(x, y, num_classes=4)
    logits = head.logits(x)
    assert logits.shape == (40, 4) and np.isfinite(logits).all()
    assert (logits.argmax(1) == y).all()
    assert head.config["absent_classes"] == [1, 3]


def test_round_trip_is_bit_identical(tmp_path) -> None:
    x, y = _blobs()
    head = fit_logistic_head(x, y)
    head.save(str(tmp_path / "head"))
    again = LinearHead.load(str(tmp_path / "head"))
    np.testing.assert_array_equal(again.logits(x), head.logits(x))
    assert again.fingerprint() == head.fingerprint()
    assert sorted(p.name for p in (tmp_path / "head").iterdir()) == ["head.json", "head.safetensors"]


def test_fingerprint_changes_when_the_head_changes() -> None:
    x, y = _blobs()
    a, b = fit_logistic_head(x, y, c=1.0), fit_logistic_head(x, y, c=0.1)
    assert a.fingerprint() != b.fingerprint()
    nudged = LinearHead(a.weight.copy(), a.bias.copy(), a.config)
    nudged.weight[0, 0] += 1e-3
    assert nudged.fingerprint() != a.fingerprint()


def test_bad_inputs_say_what_is_allowed() -> None:
    x, y = _blobs()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        fit_logistic_head(x, y, num_classes=2)
    with pytest.raises(ValueError, match="at least 2 distinct labels"):
        fit_logistic_head(x, np.zeros(len(y), dtype=np.int64))
    with pytest.raises(ValueError, match="integer class ids"):
        fit_logistic_head(x, y.astype(np.float32))
    with pytest.raises(ValueError, match=r"head expects features \[n, 8\]"):
        fit_logistic_head(x, y).logits(x[:, :4])
