"""Sample size against hand computations, and handoff documents against the JSON schema (no MLflow needed)."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from matta_core.release.bootstrap import PairedBootstrap
from matta_core.release.gate import CheckResult, GateDecision, Reference
from matta_core.release.handoff import (
    SCHEMA_PATH,
    HandoffConfig,
    build_handoff,
    handoff_markdown,
    validate_handoff,
    write_handoff,
)
from matta_core.release.sample_size import two_proportion_sample_size


def test_sample_size_matches_a_hand_computation() -> None:
    # p1 = 0.10, MDE = +0.02 -> p2 = 0.12, pbar = 0.11; alpha = 0.05 two-sided, power = 0.80.
    #   z_(1-a/2) = z_0.975 = 1.959964            z_(1-b) = z_0.80 = 0.841621
    #   2 pbar (1 - pbar)       = 2 * 0.11 * 0.89       = 0.1958  -> sqrt = 0.442493
    #   p1 (1 - p1) + p2 (1 - p2) = 0.09 + 0.1056       = 0.1956  -> sqrt = 0.442267
    #   1.959964 * 0.442493 + 0.841621 * 0.442267       = 0.867270 + 0.372221 = 1.239491
    #   1.239491^2 = 1.536339;  / (0.12 - 0.10)^2 = / 0.0004 = 3840.85  -> 3841 per arm
    size = two_proportion_sample_size(0.10, 0.02, alpha=0.05, power=0.80)
    assert size.z_alpha == pytest.approx(1.959964, abs=1e-6) and size.z_beta == pytest.approx(0.841621, abs=1e-6)
    assert size.per_arm == 3841 and size.total == 7682


def test_sample_size_of_the_default_design() -> None:
    # p1 = 0.10, p2 = 0.11, pbar = 0.105: 2 * 0.105 * 0.895 = 0.18795 -> 0.433532; 0.09 + 0.0979 = 0.1879 -> 0.433474
    #   1.959964 * 0.433532 + 0.841621 * 0.433474 = 0.849707 + 0.364821 = 1.214528; ^2 = 1.475079; / 0.0001
    #   = 14750.8 -> 14751 per arm. A smaller effect needs ~4x the rows of twice that effect (3841 above).
    config = HandoffConfig()
    size = two_proportion_sample_size(config.baseline_rate, config.minimum_detectable_effect)
    assert size.per_arm == 14751


@pytest.mark.parametrize(("baseline", "mde", "match"), [
    (0.0, 0.01, "baseline_rate"), (0.5, 0.0, "non-zero"), (0.95, 0.06, "in \\(0, 1\\)"),
])
def test_sample_size_rejects_impossible_designs(baseline: float, mde: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        two_proportion_sample_size(baseline, mde)


def passing_decision(reference: Reference) -> GateDecision:
    comparison = PairedBootstrap(n=160, candidate_accuracy=0.99, reference_accuracy=0.89, diff=0.10, ci_low=0.06,
                                 ci_high=0.15, confidence=0.95, resamples=2000, seed=0)
    candidate = {"name": "student-8", "widths": [8], "accuracy": 0.99, "params": 8300, "dense_params": 108,
                 "latency_p95_ms": 0.09, "flops_per_example": 1584.0, "macro_f1": 0.99}
    return GateDecision(size_class="xs", registered_model="matta-banking77-xs", pipeline_run_id="kfp-run-3",
                        candidate=candidate, candidate_model_dir="/m", reference=reference, comparison=comparison,
                        checks=[CheckResult("improvement", True, "ok")], test_rows=160, test_rows_hash="a" * 64)


CHAMPION = Reference("champion", "matta-banking77-xs", "models:/matta-banking77-xs/1", "1")
BASELINE = Reference("baseline", "ce_only", model_dir="/baseline")


@pytest.mark.parametrize("reference", [CHAMPION, BASELINE], ids=["champion", "first-release"])
def test_handoff_validates_against_the_schema(reference: Reference, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reference_metrics = {"accuracy": 0.89, "params": 8404.0, "latency_p95_ms": 0.14, "flops_per_example": 1776.0}
    document = build_handoff(passing_decision(reference), HandoffConfig(daily_units=20_000), challenger_version="2",
                             reference_metrics=reference_metrics, size_class_budget={"max_dense_params": 120})
    validate_handoff(document)
    assert document["schema_version"] == "1.2.0"
    assert document["challenger"]["model_uri"] == "models:/matta-banking77-xs/2"
    assert document["registry"]["challenger_alias"] is True
    champion = {"champion": "1"} if reference is CHAMPION else {}
    assert document["registry"]["aliases"] == {"challenger": "2", **champion}
    assert (document["champion"] is None) == (reference.kind == "baseline")
    assert [s["challenger_percent"] for s in document["experiment"]["traffic"]["ramp"]] == [1, 5, 20, 50]
    assert document["experiment"]["sample_size"]["per_arm"] == 14751
    # 14,751 per arm at 50 % of 20,000 units a day -> 1.48 days in the final stage.
    assert document["experiment"]["sample_size"]["estimated_days_at_final_stage"] == pytest.approx(1.4751)
    latency = next(g for g in document["experiment"]["guardrails"] if g["metric"] == "latency_p95_ms")
    assert latency["offline_delta"] == pytest.approx((0.09 - 0.14) / 0.14)
    json_path, md_path = write_handoff(document, tmp_path)
    assert json.loads(json_path.read_text()) == document and "14,751 users per arm" in md_path.read_text()


def test_a_handoff_that_lost_the_challenger_alias_says_so() -> None:
    """Two runs released into one registered model: the older run's handoff names its own version, and that the
    registry's @challenger holds the newer one."""
    document = build_handoff(passing_decision(CHAMPION), HandoffConfig(), challenger_version="2",
                             reference_metrics={}, size_class_budget={},
                             registry_aliases={"champion": "1", "challenger": "3"}, challenger_alias=False)
    validate_handoff(document)
    assert document["challenger"]["version"] == "2"
    assert document["registry"] == {**document["registry"], "aliases": {"champion": "1", "challenger": "3"},
                                    "challenger_alias": False}
    markdown = handoff_markdown(document)
    assert "not the current @challenger" in markdown and "@challenger = v3" in markdown


def test_schema_rejects_unpinned_uris_and_unknown_fields() -> None:
    document = build_handoff(passing_decision(CHAMPION), HandoffConfig(), challenger_version="2",
                             reference_metrics={}, size_class_budget={})
    alias = copy.deepcopy(document)
    alias["champion"]["model_uri"] = "models:/matta-banking77-xs@champion"
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        validate_handoff(alias)
    extra = {**copy.deepcopy(document), "notes": "x"}
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        validate_handoff(extra)
    with pytest.raises(jsonschema.ValidationError):
        validate_handoff({**document, "schema_version": "2.0.0"})


def test_schema_file_is_draft_2020_12() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_repository_schema_path_is_the_shipped_schema() -> None:
    # schemas/ab_handoff.schema.json is where readers look; the package ships the same file so that an installed
    # wheel or image can validate. The repository path is a link to it, so the two can never drift.
    from pathlib import Path

    repo_schema = Path(__file__).resolve().parents[2] / "schemas" / "ab_handoff.schema.json"
    assert repo_schema.resolve() == SCHEMA_PATH.resolve()
    assert json.loads(repo_schema.read_text()) == json.loads(SCHEMA_PATH.read_text())


def test_handoff_config_rejects_a_decreasing_ramp() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        HandoffConfig(ramp=[{"challenger_percent": 20, "min_duration_hours": 1},
                            {"challenger_percent": 5, "min_duration_hours": 1}])


def test_only_a_passing_decision_gets_a_handoff() -> None:
    decision = passing_decision(CHAMPION)
    decision.checks.append(CheckResult("budget", False, "too big"))
    with pytest.raises(ValueError, match="only a candidate that passed"):
        build_handoff(decision, HandoffConfig(), challenger_version="2", reference_metrics={}, size_class_budget={})
