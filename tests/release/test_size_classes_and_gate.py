"""Size-class selection, the paired bootstrap and the gate's checks, on plain records (no MLflow)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from matta_core.release.bootstrap import paired_bootstrap
from matta_core.release.config import ReleaseConfig
from matta_core.release.gate import GateConfig, Reference, gate_candidate
from matta_core.release.rows import EvalRows
from matta_core.release.size_classes import (
    NoCandidateError,
    SizeClass,
    candidate_for_class,
    registered_model_name,
)

RECORDS = [
    {"name": "ta-1024", "arm": "matta", "accuracy": 0.93, "params": 33_700_000, "dense_params": 211_000,
     "flops_per_example": 9e5, "latency_p95_ms": 0.9},
    {"name": "256", "arm": "matta", "accuracy": 0.92, "params": 33_600_000, "dense_params": 52_800,
     "flops_per_example": 4e5, "latency_p95_ms": 0.5},
    {"name": "student-64", "arm": "matta", "accuracy": 0.90, "params": 33_570_000, "dense_params": 13_300,
     "flops_per_example": 2e5, "latency_p95_ms": 0.3},
    {"name": "64-tie", "arm": "matta", "accuracy": 0.90, "params": 33_560_000, "dense_params": 13_000,
     "flops_per_example": 2e5, "latency_p95_ms": 0.3},
    {"name": "ce_only", "arm": "ce_only", "accuracy": 0.95, "params": 1, "dense_params": 1,
     "flops_per_example": 1, "latency_p95_ms": 0.01},
]


def test_best_width_that_fits_each_budget() -> None:
    assert candidate_for_class(RECORDS, SizeClass(name="xl"))["name"] == "ta-1024"  # no limit: the best
    assert candidate_for_class(RECORDS, SizeClass(name="s", max_dense_params=60_000))["name"] == "256"
    assert candidate_for_class(RECORDS, SizeClass(name="s", max_latency_p95_ms=0.6, max_flops=5e5))["name"] == "256"
    # Equal accuracy: fewer params wins; the baseline arm is never a candidate even though it "fits" and is best.
    assert candidate_for_class(RECORDS, SizeClass(name="xs", max_dense_params=15_000))["name"] == "64-tie"
    assert candidate_for_class(RECORDS, SizeClass(name="xs", max_params=33_000_000)) is None


def test_nothing_fits_explains_every_width() -> None:
    with pytest.raises(NoCandidateError) as info:
        candidate_for_class(RECORDS, SizeClass(name="xs", max_dense_params=1_000), required=True)
    message = str(info.value)
    assert "no width fits size class 'xs'" in message and "student-64: dense_params 13300 > max_dense_params 1000" \
        in message and "ce_only" not in message


def test_unmeasured_latency_does_not_fit_a_latency_budget() -> None:
    record = {**RECORDS[2], "latency_p95_ms": None}
    assert SizeClass(name="xs", max_latency_p95_ms=1.0).violations(record) == [
        "latency_p95_ms not measured (class 'xs' has max_latency_p95_ms=1; evaluate with measure_speed on)"]


def test_size_class_names_and_registered_model_names() -> None:
    assert registered_model_name("matta-banking77", SizeClass(name="s")) == "matta-banking77-s"
    with pytest.raises(ValidationError, match="lower-case letters"):
        SizeClass(name="Small")
    with pytest.raises(ValidationError, match="declared twice"):
        ReleaseConfig(size_classes=[SizeClass(name="s"), SizeClass(name="s")])
    with pytest.raises(ValidationError, match="extra"):
        SizeClass(name="s", max_parms=1)


def test_paired_bootstrap_is_deterministic_and_paired() -> None:
    rng = np.random.default_rng(1)
    reference = rng.random(400) < 0.7
    candidate = reference.copy()
    candidate[np.flatnonzero(~reference)[:40]] = True  # fixes 40 errors, breaks nothing: +0.10
    first = paired_bootstrap(candidate, reference, seed=3)
    assert first == paired_bootstrap(candidate, reference, seed=3)
    assert first.diff == pytest.approx(0.10) and 0.06 < first.ci_low < 0.10 < first.ci_high < 0.14
    # Unpaired, the same accuracies would overlap heavily; paired, identical models give exactly [0, 0].
    same = paired_bootstrap(reference, reference)
    assert (same.diff, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap(candidate, reference[:10])


def _gate(candidate: list[str], reference: list[str], config: GateConfig, record: dict | None = None):  # type: ignore[no-untyped-def]
    rows = EvalRows(tuple(f"t{i}" for i in range(len(candidate))), tuple(["a"] * len(candidate)))
    return gate_candidate(size_class=SizeClass(name="s", max_dense_params=100), registered_model="m-s",
                          pipeline_run_id="r", record=record or {"name": "w", "accuracy": 0.9, "dense_params": 50},
                          model_dir="/m", rows=rows, candidate_labels=candidate, reference=Reference("champion", "m-s",
                          "models:/m-s/1", "1"), reference_labels=reference, config=config)


def test_identical_models_fail_the_default_gate_but_pass_a_non_inferiority_margin() -> None:
    labels = ["a"] * 90 + ["b"] * 10
    strict = _gate(labels, labels, GateConfig())
    assert not strict.passed and [c.name for c in strict.failed_checks] == ["improvement"]
    assert "lower bound <= min_improvement +0.0000" in strict.failed_checks[0].detail
    assert _gate(labels, labels, GateConfig(min_improvement=-0.01)).passed


def test_floors_and_budget_fail_with_their_evidence() -> None:
    better, worse = ["a"] * 100, ["a"] * 50 + ["b"] * 50
    decision = _gate(better, worse, GateConfig(floors={"accuracy": 0.95, "macro_f1": 0.5}),
                     record={"name": "w", "accuracy": 0.9, "dense_params": 500})
    failed = {c.name: c.detail for c in decision.failed_checks}
    assert failed == {"floor:accuracy": "accuracy 0.9000 < floor 0.9500",
                      "floor:macro_f1": "macro_f1 not in the evaluation record (numeric keys: ['accuracy', "
                                        "'dense_params'])",
                      "budget": "dense_params 500 > max_dense_params 100"}
    tags = decision.mlflow_tags()
    assert tags["matta.gate.s.passed"] == "false" and tags["matta.gate.s.reference"] == "champion v1"
    assert tags["matta.gate.s.failed_checks"] == "floor:accuracy,floor:macro_f1,budget"
