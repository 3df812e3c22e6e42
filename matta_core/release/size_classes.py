"""Size classes: named serving budgets, and which width of a run is released in each.

One run yields many widths; serving wants a few stable products ("xs" for on-device, "s" for CPU pods, ...).
A size class is a budget on the evaluation record of a width; the released candidate of a class is the best width
(highest primary metric) that fits it. Each class is its own registered model, ``<prefix>-<class>`` (e.g.
``matta-banking77-s``), so its champion, challenger and history never mix with another class's.

The budgets bound what serving pays for: bytes on disk (what a pod pulls and caches), resident memory (what its
memory request must cover), batch-1 latency, FLOPs, and parameters (all, or the dense ones).

Config (YAML), under ``release.size_classes``::

    - {name: xs, max_dense_params: 20000, max_latency_p95_ms: 0.5, max_bytes_on_disk: 2MB}
    - {name: s, max_params: 40000000, max_flops: 2.0e6, max_resident_bytes: 1.5 GiB}

Byte budgets take an int (bytes) or a number with a unit: kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of
1024); they are stored as ints.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from matta_core.evaluation.memory import format_bytes, parse_bytes

#: Lower-case letters and digits, starting with a letter: safe inside a registered model name and a tag key.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,15}$")
#: Budget field -> the evaluation-record key it bounds (from `ModelEvaluation.to_dict`).
BUDGET_KEYS = {
    "max_params": "params",
    "max_dense_params": "dense_params",
    "max_latency_p95_ms": "latency_p95_ms",
    "max_flops": "flops_per_example",
    "max_bytes_on_disk": "bytes_on_disk",
    "max_resident_bytes": "resident_bytes",
}
#: Budget fields in bytes (ints, shown in human units).
BYTE_BUDGETS = ("max_bytes_on_disk", "max_resident_bytes")
#: Record keys measured only with `measure_speed` on (None otherwise).
SPEED_KEYS = ("latency_p95_ms", "resident_bytes")
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
    # The saved model folder's files (`bytes_on_disk`) and the resident memory loading it and predicting adds to a
    # serving process (`resident_bytes`, measured with the speed): bytes, or a string such as "2MB", "1.5 GiB".
    max_bytes_on_disk: int | None = Field(None, gt=0)
    max_resident_bytes: int | None = Field(None, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME_PATTERN.match(name):
            raise ValueError(f"size class name {name!r} must be 1-16 lower-case letters/digits starting with a "
                             "letter (e.g. xs, s, m, l, xl): it becomes part of a registered model name")
        return name

    @field_validator(*BYTE_BUDGETS, mode="before")
    @classmethod
    def _bytes(cls, value: Any, info: ValidationInfo) -> Any:
        return value if value is None else parse_bytes(value, str(info.field_name))

    def budget(self) -> dict[str, int | float]:
        """The limits that are set, by field name (``{"max_params": 40000, "max_bytes_on_disk": 2000000}``)."""
        return {field: value for field in BUDGET_KEYS if (value := getattr(self, field)) is not None}

    def budget_lines(self, record: Mapping[str, Any]) -> list[tuple[bool, str]]:
        """Per budgeted key, whether `record` meets it and the evidence: ``(True, "bytes_on_disk 1.8 MB <=
        max_bytes_on_disk 2 MB")``, ``(False, "dense_params 500 > max_dense_params 100")``.

        A limit on a value the record lacks (latency or resident memory when speed was not measured) is not met: a
        budget that cannot be checked is not met.
        """
        lines = []
        for field, limit in self.budget().items():
            key = BUDGET_KEYS[field]
            value = record.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                lines.append((False, f"{key} not measured (class {self.name!r} has {field}={_show(field, limit)}; "
                                     "evaluate with measure_speed on)" if key in SPEED_KEYS else
                                     f"{key} missing from the evaluation record (class {self.name!r} has {field})"))
            else:
                ok = float(value) <= float(limit)
                lines.append((ok, f"{key} {_show(field, value)} {'<=' if ok else '>'} {field} {_show(field, limit)}"))
        return lines

    def violations(self, record: Mapping[str, Any]) -> list[str]:
        """Why `record` does not fit this class (the unmet `budget_lines`); empty when it fits."""
        return [line for ok, line in self.budget_lines(record) if not ok]

    def fits(self, record: Mapping[str, Any]) -> bool:
        return not self.violations(record)


def _show(field: str, value: float) -> str:
    """A budget value or a measured one: human units for bytes, ``:g`` for the rest (as before byte budgets)."""
    return format_bytes(value) if field in BYTE_BUDGETS else f"{float(value):g}"


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
    lines = [f"no width fits size class {size_class.name!r} ({describe_budget(size_class.budget())}):"]
    lines += [f"  {r.get('name')}: {'; '.join(size_class.violations(r)) or 'fits'}" for r in evaluations]
    return "\n".join(lines)


def describe_budget(budget: Mapping[str, float]) -> str:
    """A `SizeClass.budget()` in words, bytes in human units: ``"max_dense_params 15000, max_bytes_on_disk 160 MB"``
    (``"no limits"`` for an empty one)."""
    return ", ".join(f"{field} {_show(field, limit)}" for field, limit in budget.items()) or "no limits"
