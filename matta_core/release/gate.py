"""The release gate: a candidate ships only if it beats what serves today on the same rows, within its budget.

Checks (each a `CheckResult`, all recorded, the decision passes iff every one passes):

- ``floor:<metric>``: absolute minimums on the candidate's evaluation record (``GateConfig.floors``).
- ``budget``: the record fits the size class (params, dense params, FLOPs, latency p95, bytes on disk, resident
  bytes); its evidence lists every budgeted key's measured value against its limit.
- ``improvement``: paired bootstrap of the accuracy difference candidate - reference on the same test rows; passes
  iff the CI's lower bound is strictly greater than ``min_improvement``. With the default 0 the candidate must be
  better with 95 % confidence; a negative value (e.g. -0.01) is a non-inferiority margin, for a class where a
  cheaper model may cost at most one accuracy point. The reference is the class's ``@champion``; a class with no
  champion yet is compared with the Student-alone baseline (``ce_only``) of the same run.
- ``loadability``: the logged model loads and predicts the same labels as the candidate folder in a clean
  environment made of its logged requirements only, matta unimportable, pickle refused (added after logging, see
  `matta_core.release.step` and `matta_core.release.load_check`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from matta_core.release import tags as RT
from matta_core.release.bootstrap import PairedBootstrap, paired_bootstrap
from matta_core.release.predict import correctness
from matta_core.release.rows import EvalRows
from matta_core.release.size_classes import BUDGET_KEYS, SizeClass
from matta_core.storage.artifact_uri import artifact_uri

REFERENCE_CHAMPION = "champion"
REFERENCE_BASELINE = "baseline"
#: Keys of the evaluation record kept in a decision (the rest is timing detail).
RECORD_KEYS = ("name", "arm", "widths", "accuracy", "macro_f1", "top5_accuracy", "nll", "ece", "params",
               "dense_params", "flops_per_example", "latency_p50_ms", "latency_p95_ms", "throughput_examples_per_s",
               "bytes_on_disk", "weight_bytes", "resident_bytes")


class GateConfig(BaseModel):
    """Thresholds of the gate (config ``release.gate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Pass iff the lower CI bound of (candidate - reference) accuracy is > this. 0: significantly better.
    min_improvement: float = Field(0.0, ge=-1.0, le=1.0)
    # Absolute minimums on evaluation-record metrics where higher is better ({"accuracy": 0.85}).
    floors: dict[str, float] = Field(default_factory=dict)
    resamples: int = Field(2000, ge=100)
    confidence: float = Field(0.95, ge=0.5, lt=1.0)
    seed: int = 0
    check_loadability: bool = True
    # Test rows predicted by the clean load-check process (and compared with the candidate's own labels).
    loadability_rows: int = Field(16, gt=0)
    # "isolated": the installed distributions the model's requirements name, nothing else (no index needed);
    # "venv": a virtual environment pip builds from them (needs a package index). See release.load_check.
    loadability_environment: Literal["isolated", "venv"] = "isolated"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether it passed, and the evidence in words and numbers."""

    name: str
    passed: bool
    detail: str
    value: float | str | None = None
    threshold: float | str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reference:
    """What a candidate is compared with: the champion (pinned version) or the run's baseline folder."""

    kind: str
    name: str
    model_uri: str | None = None
    version: str | None = None
    model_dir: str | None = None

    def label(self) -> str:
        return f"champion v{self.version}" if self.kind == REFERENCE_CHAMPION else f"baseline {self.name}"


@dataclass
class GateDecision:
    """The decision for one size class and the evidence behind it (`to_dict` is what is stored)."""

    size_class: str
    registered_model: str
    pipeline_run_id: str
    candidate: dict[str, Any] | None
    candidate_model_dir: str | None
    reference: Reference | None
    comparison: PairedBootstrap | None
    checks: list[CheckResult]
    test_rows: int
    test_rows_hash: str
    logged_model_uri: str | None = None
    registered_version: str | None = None
    version_created: bool = False
    challenger_set: bool = False
    handoff_path: str | None = None
    notes: list[str] = field(default_factory=list)
    # The size class's limits (`SizeClass.budget()`), so a stored decision says what the candidate was held to.
    budget: dict[str, int | float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.candidate is not None and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "size_class": self.size_class,
            "budget": dict(self.budget),
            "registered_model": self.registered_model,
            "pipeline_run_id": self.pipeline_run_id,
            "passed": self.passed,
            "candidate": self.candidate,
            # Pipeline-root URIs, not the pod-local paths the task read them at (`artifact_uri`).
            "candidate_model_dir": artifact_uri(self.candidate_model_dir),
            "reference": None if self.reference is None else {
                **asdict(self.reference), "model_dir": artifact_uri(self.reference.model_dir)},
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "failed_checks": [c.name for c in self.failed_checks],
            "test_rows": self.test_rows,
            "test_rows_hash": self.test_rows_hash,
            "logged_model_uri": self.logged_model_uri,
            "registered_version": self.registered_version,
            "version_created": self.version_created,
            "challenger_set": self.challenger_set,
            "handoff_path": self.handoff_path,
            "notes": list(self.notes),
        }

    def mlflow_tags(self) -> dict[str, str]:
        """``matta.gate.<class>.*`` tags for the release run."""
        tag = lambda name: RT.gate_tag(self.size_class, name)  # noqa: E731
        tags = {
            tag("passed"): str(self.passed).lower(),
            tag("candidate"): "" if self.candidate is None else str(self.candidate.get("name")),
            tag("reference"): "" if self.reference is None else self.reference.label(),
            tag("failed_checks"): ",".join(c.name for c in self.failed_checks),
            tag("test_rows_hash"): self.test_rows_hash,
        }
        if self.comparison is not None:
            tags |= {tag("diff"): f"{self.comparison.diff:.6f}", tag("ci_low"): f"{self.comparison.ci_low:.6f}",
                     tag("ci_high"): f"{self.comparison.ci_high:.6f}"}
        if self.registered_version is not None:
            tags[tag("version")] = self.registered_version
        return tags


def record_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of an evaluation record a decision keeps."""
    return {key: record[key] for key in RECORD_KEYS if key in record}


def floor_checks(record: Mapping[str, Any], floors: Mapping[str, float]) -> list[CheckResult]:
    """One ``floor:<metric>`` check per configured floor (a missing metric fails, naming what exists)."""
    checks = []
    for metric, floor in sorted(floors.items()):
        value = record.get(metric)
        if not isinstance(value, int | float):
            numeric = sorted(k for k, v in record.items() if isinstance(v, int | float))
            checks.append(CheckResult(f"floor:{metric}", False, f"{metric} not in the evaluation record "
                                      f"(numeric keys: {numeric})", None, floor))
            continue
        ok = float(value) >= floor
        checks.append(CheckResult(f"floor:{metric}", ok, f"{metric} {float(value):.4f} {'>=' if ok else '<'} "
                                  f"floor {floor:.4f}", float(value), floor))
    return checks


def budget_check(record: Mapping[str, Any], size_class: SizeClass) -> CheckResult:
    """Whether `record` fits `size_class`; the evidence has one entry per budgeted key, measured value against
    limit, bytes in human units (``bytes_on_disk 1.8 MB <= max_bytes_on_disk 2 MB``). `value` holds the measured
    values and `threshold` the limits, as JSON."""
    lines = size_class.budget_lines(record)
    budget = json.dumps(size_class.budget(), sort_keys=True)
    measured = json.dumps({key: record.get(key) for field, key in BUDGET_KEYS.items() if field in size_class.budget()},
                          sort_keys=True)
    evidence = "; ".join(line for _, line in lines)
    if not all(ok for ok, _ in lines):
        return CheckResult("budget", False, evidence, measured, budget)
    return CheckResult("budget", True, f"fits size class {size_class.name!r}" + (f": {evidence}" if evidence else
                       " (no limits)"), measured, budget)


def improvement_check(comparison: PairedBootstrap, reference: Reference, min_improvement: float) -> CheckResult:
    ok = comparison.ci_low > min_improvement
    pct = f"{comparison.confidence:.0%}"
    return CheckResult(
        "improvement", ok,
        f"accuracy {comparison.candidate_accuracy:.4f} vs {reference.label()} {comparison.reference_accuracy:.4f}: "
        f"diff {comparison.diff:+.4f}, {pct} CI [{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}] on "
        f"{comparison.n} rows; lower bound {'>' if ok else '<='} min_improvement {min_improvement:+.4f}",
        comparison.ci_low, min_improvement,
    )


def loadability_check(ok: bool, detail: str) -> CheckResult:
    return CheckResult("loadability", ok, detail)


def gate_candidate(
    *,
    size_class: SizeClass,
    registered_model: str,
    pipeline_run_id: str,
    record: Mapping[str, Any],
    model_dir: str,
    rows: EvalRows,
    candidate_labels: Sequence[str],
    reference: Reference,
    reference_labels: Sequence[str],
    config: GateConfig,
) -> GateDecision:
    """Floors, budget and the paired-bootstrap improvement over `reference` (loadability is added later)."""
    comparison = paired_bootstrap(
        correctness(candidate_labels, rows.labels), correctness(reference_labels, rows.labels),
        resamples=config.resamples, confidence=config.confidence, seed=config.seed,
    )
    checks = [*floor_checks(record, config.floors), budget_check(record, size_class),
              improvement_check(comparison, reference, config.min_improvement)]
    return GateDecision(
        size_class=size_class.name, registered_model=registered_model, pipeline_run_id=pipeline_run_id,
        candidate=record_summary(record), candidate_model_dir=model_dir, reference=reference,
        comparison=comparison, checks=checks, test_rows=len(rows), test_rows_hash=rows.content_hash,
        budget=size_class.budget(),
    )


def no_candidate_decision(size_class: SizeClass, registered_model: str, pipeline_run_id: str, rows: EvalRows,
                          why: str) -> GateDecision:
    """The decision for a class no width fits: rejected, with the reason per width."""
    return GateDecision(
        size_class=size_class.name, registered_model=registered_model, pipeline_run_id=pipeline_run_id,
        candidate=None, candidate_model_dir=None, reference=None, comparison=None,
        checks=[CheckResult("candidate", False, why)], test_rows=len(rows), test_rows_hash=rows.content_hash,
        budget=size_class.budget(),
    )
