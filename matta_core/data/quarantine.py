"""Quarantined rows: the reasons a row is set aside, the record kept for each, and the quarantine file format.

Row numbers: `row` is the 1-based number of the data record in its source file, header excluded (the first row
under a CSV header is row 1; blank lines are not records). `line` is the 1-based physical line where the record
starts (CSV, JSONL), which differs from `row` after a header, blank lines or quoted multi-line fields; it is null
for Parquet. `values` holds the original values; bytes that are not valid UTF-8 are shown as `\\xNN` escapes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

QUARANTINE_FILE = "quarantine.jsonl"

# Surrogate code points never belong to valid text: the reader maps undecodable bytes to them (surrogateescape),
# and a JSON "\udcxx" escape produces them too. Either way the value cannot be stored as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


class Reason(StrEnum):
    """Why a row was quarantined. `missing_column` is a whole-file error and never appears on a row."""

    NON_UTF8 = "non_utf8"
    MALFORMED_ROW = "malformed_row"
    # NUL, ESC, C1 codes... in the text or label (`matta_core.data.control_chars`), unless data.control_chars: clean.
    CONTROL_CHARS = "control_chars"
    EMPTY_TEXT = "empty_text"
    MISSING_LABEL = "missing_label"
    UNKNOWN_LABEL = "unknown_label"
    NON_FINITE_FEATURE = "non_finite_feature"
    CONFLICTING_LABEL = "conflicting_label"
    LEAKS_INTO_TEST = "leaks_into_test"
    DUPLICATE = "duplicate"
    # A test row whose label no training row has, set aside under data.unseen_test_labels: drop.
    UNSEEN_TEST_LABEL = "unseen_test_label"


@dataclass
class QuarantinedRow:
    """One row set aside, with where it came from and why."""

    file: str
    row: int
    line: int | None
    reason: Reason
    detail: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One line of the quarantine file."""
        record = {
            "file": self.file,
            "row": self.row,
            "line": self.line,
            "reason": str(self.reason),
            "detail": self.detail,
            "values": {k: json_safe(v) for k, v in self.values.items()},
        }
        return json.dumps(record, ensure_ascii=False, allow_nan=False)


def has_surrogate(value: str) -> bool:
    """True when `value` holds undecodable bytes (surrogateescape) or lone surrogates."""
    return _SURROGATE.search(value) is not None


def display_text(value: str) -> str:
    """`value` with undecodable bytes as `\\xNN` escapes (and any other lone surrogate as `\\udNNN`)."""
    if not has_surrogate(value):
        return value
    raw = value.encode("utf-8", "surrogateescape") if _only_escaped_bytes(value) else None
    if raw is not None:
        return raw.decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def json_safe(value: Any) -> Any:
    """A JSON-serialisable, lossless-enough rendering of an original cell value for the quarantine file."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # "nan", "inf": JSON has no such numbers
    if isinstance(value, str):
        return display_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "tolist"):  # numpy scalars and arrays (Parquet list columns)
        return json_safe(value.tolist())
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


def _only_escaped_bytes(value: str) -> bool:
    return all("\udc80" <= ch <= "\udcff" for ch in _SURROGATE.findall(value))
