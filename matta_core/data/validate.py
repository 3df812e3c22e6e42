"""Row validation: decide, for each row of a source table, whether it is kept or quarantined and why.

Each row gets at most one reason: the first that applies, in the order of the checks below. Per row: unreadable
(`non_utf8`, `malformed_row`, from the reader), `control_chars` (or, with `control_chars="clean"`, the characters
are cleaned out and the row goes on), `empty_text`, `missing_label`, `unknown_label`, `non_finite_feature`.
Then across rows of one source file: `conflicting_label` (the same text with different labels: every such row,
since which label is right cannot be told), `leaks_into_test` (a training-pool text that is also in the test
split), and `duplicate` (the same text again: the first row is kept). Across splits (`label_checks`):
`unseen_test_label`.
"""

from __future__ import annotations

import difflib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from matta_core.data.control_chars import CONTROL_CHAR_MODES, clean_control_chars, control_chars_in, describe
from matta_core.data.errors import EmptyFileError, MissingColumnsError
from matta_core.data.quarantine import QuarantinedRow, Reason
from matta_core.data.schema import DataSchema
from matta_core.data.split import normalise_text
from matta_core.data.tables import SourceTable

_LABELS_SHOWN = 8


@dataclass
class ValidRow:
    """A row that passed the per-row checks: normalised text, label name and features as floats."""

    row: int
    text: str
    label: str
    features: tuple[float, ...]


@dataclass
class ValidatedSource:
    """One source file after validation: the rows kept and the rows quarantined."""

    table: SourceTable
    rows: list[ValidRow] = field(default_factory=list)
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    # Rows kept with their control characters cleaned out (control_chars="clean").
    cleaned: int = 0

    @property
    def texts(self) -> set[str]:
        """The normalised texts kept."""
        return {r.text for r in self.rows}

    def quarantine(self, row: ValidRow, reason: Reason, detail: str) -> None:
        """Move a kept row to the quarantine."""
        self.quarantined.append(_quarantined(self.table, row.row, reason, detail))


def check_columns(table: SourceTable, schema: DataSchema) -> None:
    """Raise `EmptyFileError` for a file with nothing in it, and `MissingColumnsError` (naming the file, the
    missing and the found columns, and the config key that picks each column) if a column is absent."""
    if not table.columns:
        if table.n_rows == 0:
            raise EmptyFileError(table.uri, table.fmt, schema.required_columns)
        # Records exist but none could be read (a whole JSONL file in latin-1): there are no columns to check;
        # each record is quarantined with its reason and the bad-row limit says what happened.
        return
    missing = [c for c in schema.required_columns if c not in table.columns]
    if missing:
        raise MissingColumnsError(table.uri, missing, table.columns, hint=_columns_hint(schema, missing, table.columns))


def _columns_hint(schema: DataSchema, missing: Sequence[str], found: Sequence[str]) -> str:
    keys = {schema.text_column: ("data.text_column", "texts"), schema.label_column: ("data.label_column", "labels")}
    hints = [
        f"set {keys[c][0]} to the column that holds the {keys[c][1]}" if c in keys
        else f"{c!r} is a declared feature column (DataSchema(feature_columns=...))"
        for c in missing
    ]
    unused = [c for c in found if c not in schema.required_columns]
    if len(missing) == 1 and missing[0] in keys and len(unused) == 1:
        hints[0] += f" (here probably {keys[missing[0]][0]}: {unused[0]})"
    return "In the config, " + "; ".join(hints) + "."


def validate_rows(table: SourceTable, schema: DataSchema, *, control_chars: str = "quarantine") -> ValidatedSource:
    """Apply the per-row checks to every readable row; rows the reader could not read are quarantined as they are.

    `control_chars`: "quarantine" sets aside rows whose text or label holds control characters; "clean" keeps
    them with the characters cleaned out (`clean_control_chars`) and counts them in `ValidatedSource.cleaned`.
    """
    if control_chars not in CONTROL_CHAR_MODES:
        raise ValueError(f"control_chars must be one of {list(CONTROL_CHAR_MODES)}, got {control_chars!r}.")
    check_columns(table, schema)
    result = ValidatedSource(table, quarantined=list(table.rejected))
    if not table.columns:
        return result
    allowed = None if schema.labels is None else set(schema.labels)
    frame = table.frame
    columns = [frame[c].tolist() for c in schema.required_columns]
    for row, text_value, label_value, *feature_values in zip(frame.index.tolist(), *columns, strict=True):
        problem = _control_problem(schema, text_value, label_value)
        if problem is not None and control_chars == "clean":
            text_value, label_value, problem = _clean(text_value), _clean(label_value), None
            result.cleaned += 1
        if problem is None:
            problem = _text_problem(schema.text_column, text_value)
        if problem is None:
            label, problem = _label(schema, label_value, allowed)
        if problem is None:
            features, problem = _features(schema.feature_columns, feature_values)
        if problem is not None:
            result.quarantined.append(_quarantined(table, row, *problem))
            continue
        result.rows.append(ValidRow(row, normalise_text(text_value), label, features))
    return result


def drop_conflicting_labels(source: ValidatedSource) -> None:
    """Quarantine every row of a text that carries more than one label in this source."""
    labels_of: dict[str, set[str]] = defaultdict(set)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for r in source.rows:
        labels_of[r.text].add(r.label)
        rows_of[r.text].append(r.row)
    kept = []
    for r in source.rows:
        if len(labels_of[r.text]) == 1:
            kept.append(r)
            continue
        others = ", ".join(f"row {n}" for n in rows_of[r.text] if n != r.row)
        detail = (
            f"the same text carries labels {sorted(labels_of[r.text])} ({others}); all such rows are set aside "
            "because the right label cannot be told"
        )
        source.quarantine(r, Reason.CONFLICTING_LABEL, detail)
    source.rows = kept


def drop_test_leaks(source: ValidatedSource, test_texts: set[str], test_file: str) -> None:
    """Quarantine training-pool rows whose text is also in the test split (they would inflate test scores)."""
    kept = []
    for r in source.rows:
        if r.text in test_texts:
            source.quarantine(r, Reason.LEAKS_INTO_TEST, f"the same text is in the test split ({test_file})")
        else:
            kept.append(r)
    source.rows = kept


def drop_duplicates(source: ValidatedSource) -> None:
    """Keep the first row of each text (after whitespace normalisation); quarantine the others."""
    first: dict[str, int] = {}
    kept = []
    for r in source.rows:
        if r.text in first:
            source.quarantine(r, Reason.DUPLICATE, f"same text as row {first[r.text]}, which is kept")
        else:
            first[r.text] = r.row
            kept.append(r)
    source.rows = kept


def _quarantined(table: SourceTable, row: int, reason: Reason, detail: str) -> QuarantinedRow:
    # Original values are looked up only for the (few) quarantined rows, not carried for every row.
    values = table.frame.loc[row].to_dict()
    return QuarantinedRow(table.uri, row, table.lines.get(row), reason, detail, values)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _control_problem(schema: DataSchema, text: Any, label: Any) -> tuple[Reason, str] | None:
    for what, column, value in (("text", schema.text_column, text), ("label", schema.label_column, label)):
        found = control_chars_in(value) if isinstance(value, str) else []
        if found:
            detail = (f"control character(s) {describe(found)} in {what} column {column!r} (data.control_chars: "
                      "clean would remove them)")
            return Reason.CONTROL_CHARS, detail
    return None


def _clean(value: Any) -> Any:
    return clean_control_chars(value) if isinstance(value, str) else value


def _text_problem(column: str, value: Any) -> tuple[Reason, str] | None:
    if _is_missing(value):
        return Reason.EMPTY_TEXT, f"no value in text column {column!r}"
    if not isinstance(value, str):
        return Reason.MALFORMED_ROW, f"text column {column!r} holds a {type(value).__name__}, not a string"
    if not value.strip():
        return Reason.EMPTY_TEXT, f"text column {column!r} is empty or whitespace only"
    return None


def _label(schema: DataSchema, value: Any, allowed: set[str] | None) -> tuple[str, tuple[Reason, str] | None]:
    column = schema.label_column
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return "", (Reason.MISSING_LABEL, f"no value in label column {column!r}")
    label = _label_name(value)
    if label is None:
        return "", (Reason.MALFORMED_ROW, f"label column {column!r} holds a {type(value).__name__}")
    if allowed is not None and label not in allowed:
        return label, (Reason.UNKNOWN_LABEL, _unknown_label_detail(column, label, schema.labels or ()))
    return label, None


def _label_name(value: Any) -> str | None:
    """Labels are names: strings are stripped, integers (and integral floats, as JSON may write them) spelled out."""
    if isinstance(value, str):
        return value.strip()
    if hasattr(value, "item") and not isinstance(value, list | dict):
        value = value.item()  # numpy scalar
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _unknown_label_detail(column: str, label: str, allowed: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in sorted(allowed)[:_LABELS_SHOWN])
    more = f", ... ({len(allowed)} in all)" if len(allowed) > _LABELS_SHOWN else ""
    close = difflib.get_close_matches(label, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"label {label!r} in column {column!r} is not an allowed label ({shown}{more}){hint}"


def _features(columns: Sequence[str], values: Iterable[Any]) -> tuple[tuple[float, ...], tuple[Reason, str] | None]:
    out: list[float] = []
    for column, value in zip(columns, values, strict=True):
        number, problem = _to_float(value)
        if problem is not None:
            return (), (Reason.NON_FINITE_FEATURE, f"feature column {column!r}: {problem}")
        out.append(number)
    return tuple(out), None


def _to_float(value: Any) -> tuple[float, str | None]:
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return math.nan, "no value (features must be finite numbers)"
    if isinstance(value, bool) or (not isinstance(value, str | int | float) and not hasattr(value, "__float__")):
        return math.nan, f"{value!r} is not a number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan, f"{value!r} is not a number"
    if not math.isfinite(number):
        return number, f"{value!r} is not finite (features must be finite numbers)"
    return number, None
