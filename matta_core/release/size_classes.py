"""Size classes: named serving budgets, and which width of a run is released in each.

One run yields many widths; serving wants a few stable products ("xs" for on-device, "s" for CPU pods, ...).
A size class is a budget on the evaluation record of a width; the released candidate of a class is the best width
(highest primary metric) that fits it. Each class is its own registered model, ``<prefix>-<class>`` (e.g.
``matta-banking77-s``), so its champion, challenger and history never mix with another class's.

Config (YAML), under ``release.size_classes``::

    - {name: xs, max_dense_params: 20000, max_latency_p95_ms: 0.5}
    - {name: s, max_params: 40000000, max_flops: 2.0e6}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Lower-case letters and digits, starting with a letter: safe inside a registered model name and a tag key.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,15}$")
#: Budget field -> the evaluation-record key it bounds (from `ModelEvaluation.to_dict`).
BUDGET_KEYS = {
    "max_params": "params",
    "max_dense_params": "dense_params",
    "max_latency_p95_ms": "latency_p95_ms",
    "max_flops": "flops_per_example",
}
#: Arms whose widths are release candidates; the baselines exist to be compared against, not to ship.
CANDIDATE_ARMS = ("matta",)


class NoCandidateError(LookupError):
    """No evaluated width fits a size class; the message lists every width and why it did not fit."""


class SizeClass(BaseModel):
    """A named budget. Every given limit must hold (``<=``); a class with no limit takes the best width."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    max_params: int | None = Field(None, gt=0)
    max_dense_params: int | None = Field(None, gt=0)
    max_latency_p95_ms: float | None = Field(None, gt=0.0)
    max_flops: float | None = Field(None, gt=0.0)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME_PATTERN.match(name):
            raise ValueError(f"size class name {name!r} must be 1-16 lower-case letters/digits starting with a "
                             "letter (e.g. xs, s, m, l, xl): it becomes part of a registered model name")
        return name

    def budget(self) -> dict[str, float]:
        """The limits that are set, by field name (``{"max_params": 40000}``)."""
        return {field: value for field in BUDGET_KEYS if (value := getattr(self, field)) is not None}

    def violations(self, record: Mapping[str, Any]) -> list[str]:
        """Why `record` does not fit this class; empty when it fits.

        A limit on a value the record lacks (latency when speed was not measured) is a violation: a budget that
        cannot be checked is not met.
        """
        problems = []
        for field, limit in self.budget().items():
            key = BUDGET_KEYS[field]
            value = record.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                problems.append(f"{key} not measured (class {self.name!r} has {field}={limit:g}; "
                                "evaluate with measure_speed on)" if key.startswith("latency") else
                                f"{key} missing from the evaluation record (class {self.name!r} has {field})")
            elif float(value) > float(limit):
                problems.append(f"{key} {float(value):g} > {field} {limit:g}")
        return problems

    def fits(self, record: Mapping[str, Any]) -> bool:
        return not self.violations(record)


def registered_model_name(prefix: str, size_class: SizeClass | str) -> str:
    """The registered model of a class: ``<prefix>-<class>`` (``matta-banking77`` + ``s`` -> ``matta-banking77-s``)."""
    name = size_class.name if isinstance(size_class, SizeClass) else size_class
    if not prefix or prefix != prefix.strip():
        raise ValueError(f"registered model prefix {prefix!r} must be a non-empty name without spaces at the ends")
    return f"{prefix}-{name}"


def check_size_classes(classes: Sequence[SizeClass]) -> Sequence[SizeClass]:
    """Raise if two classes share a name (they would share a registered model)."""
    seen: set[str] = set()
    for size_class in classes:
        if size_class.name in seen:
            raise ValueError(f"size class {size_class.name!r} is declared twice; names must be unique")
        seen.add(size_class.name)
    return classes


def candidate_for_class(
    evaluations: Iterable[Mapping[str, Any]],
    size_class: SizeClass,
    primary_metric: str = "accuracy",
    *,
    required: bool = False,
    arms: Sequence[str] = CANDIDATE_ARMS,
) -> dict[str, Any] | None:
    """The best evaluation record of `arms` that fits `size_class`: highest `primary_metric`, then fewest params.

    Returns None when nothing fits, or raises `NoCandidateError` (listing every width and why) with `required`.
    Records without an ``arm`` count as ``matta``.
    """
    considered = [dict(r) for r in evaluations if r.get("arm", "matta") in arms]
    for record in considered:
        if not isinstance(record.get(primary_metric), int | float):
            raise ValueError(f"evaluation {record.get('name')!r} has no numeric {primary_metric!r}; numeric keys: "
                             f"{sorted(k for k, v in record.items() if isinstance(v, int | float))}")
    fitting = [r for r in considered if size_class.fits(r)]
    if fitting:
        return max(fitting, key=lambda r: (float(r[primary_metric]), -float(r.get("params") or 0)))
    if required:
        raise NoCandidateError(explain_no_fit(considered, size_class))
    return None


def explain_no_fit(evaluations: Sequence[Mapping[str, Any]], size_class: SizeClass) -> str:
    """One line per width saying why it does not fit `size_class`."""
    if not evaluations:
        return f"size class {size_class.name!r}: no candidate evaluations (arms {list(CANDIDATE_ARMS)}) were given"
    lines = [f"no width fits size class {size_class.name!r} {size_class.budget()}:"]
    lines += [f"  {r.get('name')}: {'; '.join(size_class.violations(r)) or 'fits'}" for r in evaluations]
    return "\n".join(lines)
