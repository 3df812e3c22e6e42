"""Size classes by what serving pays for: byte budgets (on disk, resident), their units, the gate and its report.

Plain records and decisions, no MLflow; the measured values themselves are tested in tests/evaluation/test_memory.py.
"""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic import ValidationError

from matta_core.release.bootstrap import PairedBootstrap
from matta_core.release.config import ReleaseConfig
from matta_core.release.gate import GateConfig, Reference, budget_check, gate_candidate, no_candidate_decision
from matta_core.release.handoff import HandoffConfig, build_handoff, validate_handoff
from matta_core.release.report import gate_report_markdown
from matta_core.release.rows import EvalRows
from matta_core.release.size_classes import NoCandidateError, SizeClass, candidate_for_class

MB = 1000**2


def demo_width(width: int, accuracy: float, compact: bool = False) -> dict:
    """The record of one width of the default demo run: one hidden layer at embed 128, 77 classes. Saved as
    trained, every width holds the whole 2^18 x 128 float32 table (+ the IDF vector); compact (the extraction
    section's defaults), the 37,445 rows Banking77's training split hashes into, int8 with a float32 scale, an int32
    bucket id and a float32 IDF each (measured: student-64 5,296,124 bytes)."""
    dense = 206 * width + 77
    table = 37_445 * (128 + 12) if compact else 4 * (2**18 * 128 + 2**18)
    on_disk = table + 4 * dense + 2_000  # + safetensors header and config.json
    name = {1024: "ta-1024", 64: "student-64"}.get(width, str(width))
    return {"name": name, "arm": "matta", "accuracy": accuracy, "params": 2**18 * 128 + dense, "dense_params": dense,
            "bytes_on_disk": on_disk, "resident_bytes": None, "latency_p95_ms": None}


DEMO = [demo_width(w, 0.80 + 0.01 * i) for i, w in enumerate([16, 32, 64, 128, 256, 512, 1024])]
DEMO_COMPACT = [demo_width(w, 0.80 + 0.01 * i, compact=True) for i, w in enumerate([16, 32, 64, 128, 256, 512, 1024])]


def test_byte_budgets_take_ints_and_human_strings_and_store_ints() -> None:
    size_class = SizeClass(name="xs", max_bytes_on_disk="2MB", max_resident_bytes="1.5 MiB")
    assert size_class.max_bytes_on_disk == 2_000_000 and size_class.max_resident_bytes == 1_572_864
    assert SizeClass(name="s", max_bytes_on_disk="500kB").max_bytes_on_disk == 500_000
    assert SizeClass(name="m", max_bytes_on_disk="2 GB").max_bytes_on_disk == 2_000_000_000
    assert SizeClass(name="l", max_bytes_on_disk=123_456).max_bytes_on_disk == 123_456
    budget = size_class.budget()
    assert budget == {"max_bytes_on_disk": 2_000_000, "max_resident_bytes": 1_572_864}
    assert all(type(v) is int for v in budget.values())
    assert json.dumps(budget, sort_keys=True) == '{"max_bytes_on_disk": 2000000, "max_resident_bytes": 1572864}'
    # YAML as a run config gives it, and the JSON round trip a pipeline parameter takes.
    release = ReleaseConfig.parse(yaml.safe_load("size_classes:\n  - {name: xs, max_bytes_on_disk: 2MB}\n"))
    assert release.size_classes[0].max_bytes_on_disk == 2_000_000
    assert ReleaseConfig.model_validate_json(release.model_dump_json()) == release


@pytest.mark.parametrize(("value", "why"), [
    ("2 MBs", "is not a size"), ("lots", "is not a size"), ("1.5", "not a whole number"), (True, "is not a size"),
])
def test_a_bad_byte_budget_names_the_field_and_the_allowed_forms(value: object, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        SizeClass(name="xs", max_resident_bytes=value)
    message = str(info.value)
    assert f"max_resident_bytes\n  Value error, max_resident_bytes: {value!r} " in message and why in message
    assert "kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)" in message
    with pytest.raises(ValidationError, match="max_bytes_on_disk\n  Input should be greater than 0"):
        SizeClass(name="xs", max_bytes_on_disk="0 MB")


def test_fit_and_violations_with_byte_budgets() -> None:
    size_class = SizeClass(name="xs", max_bytes_on_disk="2MB", max_resident_bytes="4MB")
    record = {"name": "64", "bytes_on_disk": 1_800_000, "resident_bytes": 3_900_000}
    assert size_class.fits(record)
    assert size_class.budget_lines(record) == [(True, "bytes_on_disk 1.8 MB <= max_bytes_on_disk 2 MB"),
                                               (True, "resident_bytes 3.9 MB <= max_resident_bytes 4 MB")]
    assert size_class.violations({**record, "bytes_on_disk": 2_500_000}) == [
        "bytes_on_disk 2.5 MB > max_bytes_on_disk 2 MB"]
    # Resident memory is measured with the speed: without it the budget cannot be checked, so it is not met.
    assert size_class.violations({**record, "resident_bytes": None}) == [
        "resident_bytes not measured (class 'xs' has max_resident_bytes=4 MB; evaluate with measure_speed on)"]
    assert size_class.violations({"name": "old"}) == [
        "bytes_on_disk missing from the evaluation record (class 'xs' has max_bytes_on_disk)",
        "resident_bytes not measured (class 'xs' has max_resident_bytes=4 MB; evaluate with measure_speed on)"]


def test_the_best_width_within_a_byte_budget_is_the_candidate() -> None:
    records = [{"name": "big", "accuracy": 0.95, "bytes_on_disk": 9 * MB},
               {"name": "mid", "accuracy": 0.93, "bytes_on_disk": 3 * MB},
               {"name": "small", "accuracy": 0.90, "bytes_on_disk": 1 * MB}]
    assert candidate_for_class(records, SizeClass(name="s", max_bytes_on_disk="4MB"))["name"] == "mid"
    assert candidate_for_class(records, SizeClass(name="xs", max_bytes_on_disk="1 MiB"))["name"] == "small"


def test_default_classes_take_the_compact_widths_and_refuse_the_whole_float_table() -> None:
    """Compact widths (5.3-6.1 MB) fit every class by its dense-param limit; a width that ships the whole float32
    table (135 MB: compaction turned off) fits none, so no class ships it as a small model."""
    classes = ReleaseConfig().size_classes
    assert [c.name for c in classes] == ["xs", "s", "m"]
    assert all(isinstance(c.max_bytes_on_disk, int) for c in classes)
    picked = {c.name: candidate_for_class(DEMO_COMPACT, c, required=True)["name"] for c in classes}
    assert picked == {"xs": "student-64", "s": "256", "m": "ta-1024"}
    for size_class in classes:
        assert candidate_for_class(DEMO, size_class) is None


def _rows(n: int) -> EvalRows:
    return EvalRows(tuple(f"t{i}" for i in range(n)), tuple(["a"] * n))


def test_a_byte_budget_below_every_width_rejects_the_class_naming_bytes_on_disk() -> None:
    tight = SizeClass(name="xs", max_dense_params=15_000, max_bytes_on_disk="2MB")
    with pytest.raises(NoCandidateError) as info:
        candidate_for_class(DEMO, tight, required=True)
    message = str(info.value)
    assert "no width fits size class 'xs' (max_dense_params 15000, max_bytes_on_disk 2 MB):" in message
    assert "  student-64: bytes_on_disk 135.3 MB > max_bytes_on_disk 2 MB" in message
    assert message.count("> max_bytes_on_disk 2 MB") == len(DEMO)  # every width
    decision = no_candidate_decision(tight, "m-xs", "run", _rows(4), message)
    assert not decision.passed and decision.to_dict()["budget"] == {"max_dense_params": 15_000,
                                                                    "max_bytes_on_disk": 2_000_000}
    # A candidate gated against the class anyway fails the budget check, on bytes only, with every key's evidence.
    check = budget_check(DEMO[2], tight)
    assert not check.passed and check.detail == ("dense_params 13261 <= max_dense_params 15000; "
                                                 "bytes_on_disk 135.3 MB > max_bytes_on_disk 2 MB")
    assert json.loads(str(check.value)) == {"bytes_on_disk": DEMO[2]["bytes_on_disk"], "dense_params": 13_261}


def _decision(size_class: SizeClass, record: dict):  # type: ignore[no-untyped-def]
    labels = ["a"] * 100
    return gate_candidate(size_class=size_class, registered_model=f"m-{size_class.name}", pipeline_run_id="run",
                          record=record, model_dir="/m", rows=_rows(100), candidate_labels=labels,
                          reference=Reference("baseline", "ce_only", model_dir="/b"), reference_labels=labels,
                          config=GateConfig(min_improvement=-0.05))


def test_gate_report_shows_each_budget_and_the_measured_values() -> None:
    fits = SizeClass(name="xs", max_dense_params=15_000, max_bytes_on_disk="2MB")
    record = {"name": "64", "accuracy": 0.9, "dense_params": 13_300, "bytes_on_disk": 1_800_000,
              "resident_bytes": 3_100_000, "latency_p95_ms": 0.25}
    passed = _decision(fits, record)
    too_big = _decision(SizeClass(name="s", max_resident_bytes="3 MB"), {**record, "name": "256"})
    assert passed.passed and not too_big.passed
    assert [c.name for c in too_big.failed_checks] == ["budget"]
    report = gate_report_markdown([passed, too_big], "run")
    assert "Budget: max_dense_params 15000, max_bytes_on_disk 2 MB." in report
    assert ("Candidate `64`: dense_params 13300, bytes_on_disk 1.8 MB, resident_bytes 3.1 MB, "
            "latency_p95_ms 0.25.") in report
    assert ("| budget | pass | fits size class 'xs': dense_params 13300 <= max_dense_params 15000; "
            "bytes_on_disk 1.8 MB <= max_bytes_on_disk 2 MB |") in report
    assert "Budget: max_resident_bytes 3 MB." in report
    assert "| budget | FAIL | resident_bytes 3.1 MB > max_resident_bytes 3 MB |" in report
    # The decision keeps the measured bytes with the candidate, and the budget it was held to.
    stored = passed.to_dict()
    assert stored["candidate"]["bytes_on_disk"] == 1_800_000 and stored["budget"]["max_bytes_on_disk"] == 2_000_000


def test_no_candidate_report_keeps_one_line_per_width_inside_its_table_cell() -> None:
    tight = SizeClass(name="xs", max_bytes_on_disk="2MB")
    with pytest.raises(NoCandidateError) as info:
        candidate_for_class(DEMO, tight, required=True)
    why = str(info.value)
    report = gate_report_markdown([no_candidate_decision(tight, "m-xs", "run", _rows(4), why)], "run")
    [row] = [line for line in report.splitlines() if line.startswith("| candidate |")]
    assert "<br>  student-64: bytes_on_disk 135.3 MB > max_bytes_on_disk 2 MB" in row


def _handoff(budget: dict) -> dict:
    comparison = PairedBootstrap(n=100, candidate_accuracy=0.95, reference_accuracy=0.9, diff=0.05, ci_low=0.01,
                                 ci_high=0.09, confidence=0.95, resamples=2000, seed=0)
    decision = _decision(SizeClass(name="xs"), {"name": "64", "widths": [64], "accuracy": 0.95,
                                                   "bytes_on_disk": 1_800_000})
    decision.comparison = comparison
    return build_handoff(decision, HandoffConfig(), challenger_version="1", reference_metrics={},
                         size_class_budget=budget)


def test_handoff_carries_byte_budgets_as_ints() -> None:
    size_class = SizeClass(name="xs", max_dense_params=15_000, max_bytes_on_disk="2MB", max_resident_bytes="1.5MiB")
    budget = size_class.budget()
    document = json.loads(json.dumps(_handoff(budget)))
    assert document["size_class"]["budget"] == {"max_dense_params": 15_000, "max_bytes_on_disk": 2_000_000,
                                                "max_resident_bytes": 1_572_864}
    assert all(type(v) is int for v in document["size_class"]["budget"].values())
    assert document["challenger"]["metrics"]["bytes_on_disk"] == 1_800_000


def test_handoff_with_byte_budgets_validates_against_the_schema() -> None:
    validate_handoff(_handoff(SizeClass(name="xs", max_bytes_on_disk="2MB", max_resident_bytes="4MB").budget()))
