"""Read user tables (CSV, Parquet, JSONL) from any storage URI, row by row, without crashing on bad bytes.

CSV and JSONL are read as bytes and decoded per record: a record holding bytes that are not valid UTF-8 (or that
does not parse) is set aside with its row number, and every other record is kept. A strict whole-file decode would
lose the file to one bad byte; a lenient one (errors="replace") would silently corrupt the text.

Values are kept as read: CSV cells are strings ("" for an empty cell), JSONL cells are the JSON values (None for an
absent key), Parquet cells keep their Arrow types (integers with nulls as Python ints/None).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matta_core import storage
from matta_core.data.errors import DataFileNotFoundError, DataValidationError, UnsupportedFormatError
from matta_core.data.quarantine import QuarantinedRow, Reason, display_text, has_surrogate

FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_BOM = "\ufeff"


@dataclass
class SourceTable:
    """A table as read from one file.

    `frame` holds the readable rows, indexed by their 1-based row number ("row", header excluded); `rejected`
    the rows that could not be read (`non_utf8`, `malformed_row`); `lines` maps a row number to the physical line
    where it starts (CSV/JSONL only).
    """

    uri: str
    fmt: str
    sha256: str
    columns: list[str]
    frame: pd.DataFrame
    rejected: list[QuarantinedRow] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Every data record in the file, readable or not."""
        return len(self.frame) + len(self.rejected)


def detect_format(uri: str, fmt: str | None = None) -> str:
    """The table format: `fmt` when given, else from the file extension."""
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            raise UnsupportedFormatError(
                f"Unsupported table format {fmt!r} for {uri}; supported: {', '.join(FORMATS)}."
            )
        return fmt.lower()
    suffix = Path(uri.split("?", 1)[0]).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise UnsupportedFormatError(
            f"Cannot tell the format of {uri} from its extension {suffix or '(none)'!r}; use one of "
            f"{', '.join(sorted(_EXTENSIONS))} or pass fmt= ({', '.join(FORMATS)})."
        )
    return _EXTENSIONS[suffix]


def read_table(uri: str, fmt: str | None = None) -> SourceTable:
    """Read a CSV, JSONL or Parquet file from a local path, file:// or gs:// URI into a `SourceTable`."""
    kind = detect_format(uri, fmt)
    if not storage.exists(uri):
        raise DataFileNotFoundError(f"No such data file: {uri}")
    with tempfile.TemporaryDirectory(prefix="matta-table-") as tmp:
        # Remote files are copied to a local temporary file first: Parquet readers want a seekable file, and
        # one download is cheaper than many ranged reads.
        if storage.is_local(uri):
            path = Path(storage.to_local_path(uri))
        else:
            path = Path(tmp) / f"source.{kind}"
            storage.download_file(uri, path)
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if kind == "csv":
            return _read_csv(uri, data, digest)
        if kind == "jsonl":
            return _read_jsonl(uri, data, digest)
        return _read_parquet(uri, data, digest)


def load_table(uri: str, fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV/JSONL/Parquet file into a DataFrame indexed by 1-based row number.

    Rows that cannot be decoded as UTF-8 or parsed are left out (they never raise); `read_table` lists them.
    """
    return read_table(uri, fmt).frame


def _read_csv(uri: str, data: bytes, digest: str) -> SourceTable:
    # surrogateescape maps each undecodable byte to one lone surrogate, so the CSV structure (ASCII quotes,
    # commas, newlines) parses exactly as it would on the raw bytes, and the bad record can be found afterwards.
    text = data.decode("utf-8", "surrogateescape").removeprefix(_BOM)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return SourceTable(uri, "csv", digest, [], pd.DataFrame(index=_row_index([])))
        columns = [display_text(c) for c in header]
        _check_unique_columns(uri, columns)
        cells: list[list[str]] = [[] for _ in columns]
        rows: list[int] = []
        lines: dict[int, int] = {}
        rejected: list[QuarantinedRow] = []
        row = 0
        last_line = reader.line_num
        for fields in reader:
            start_line, last_line = last_line + 1, reader.line_num
            if not fields:  # a blank line is not a record
                continue
            row += 1
            lines[row] = start_line
            problem = _csv_problem(fields, columns)
            if problem is not None:
                reason, detail = problem
                rejected.append(QuarantinedRow(uri, row, start_line, reason, detail, _csv_values(fields, columns)))
                continue
            rows.append(row)
            for column_cells, value in zip(cells, fields, strict=True):
                column_cells.append(value)
    except csv.Error as exc:
        raise DataValidationError(f"{uri}: CSV cannot be parsed near line {reader.line_num}: {exc}.") from exc
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(columns, cells, strict=True)})
    frame.index = _row_index(rows)
    return SourceTable(uri, "csv", digest, columns, frame, rejected, lines)


def _csv_problem(fields: list[str], columns: list[str]) -> tuple[Reason, str] | None:
    bad = [c for c, v in zip(columns, fields, strict=False) if has_surrogate(v)]
    if bad or any(has_surrogate(v) for v in fields[len(columns) :]):
        where = ", ".join(repr(c) for c in bad) or "extra field(s)"
        return Reason.NON_UTF8, f"bytes that are not valid UTF-8 in {where}"
    if len(fields) != len(columns):
        return Reason.MALFORMED_ROW, f"{len(fields)} field(s) where the header has {len(columns)}"
    return None


def _csv_values(fields: list[str], columns: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = dict(zip(columns, fields, strict=False))
    if len(fields) > len(columns):
        values["_extra_fields"] = fields[len(columns) :]
    return values


def _read_jsonl(uri: str, data: bytes, digest: str) -> SourceTable:
    columns: dict[str, None] = {}  # insertion-ordered set: columns in first-seen order
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    lines: dict[int, int] = {}
    rejected: list[QuarantinedRow] = []
    row = 0
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        text = raw.decode("utf-8", "surrogateescape")
        if line_no == 1:
            text = text.removeprefix(_BOM)
        if not text.strip():
            continue
        row += 1
        lines[row] = line_no
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            reason = Reason.NON_UTF8 if has_surrogate(text) else Reason.MALFORMED_ROW
            detail = f"not valid JSON ({exc.msg} at column {exc.colno})"
            if reason is Reason.NON_UTF8:
                detail = f"bytes that are not valid UTF-8; {detail}"
            rejected.append(QuarantinedRow(uri, row, line_no, reason, detail, {"_line": text.rstrip("\r")}))
            continue
        if not isinstance(record, dict):
            detail = f"a JSON object per line is expected, found a JSON {type(record).__name__}"
            rejected.append(QuarantinedRow(uri, row, line_no, Reason.MALFORMED_ROW, detail, {"_line": record}))
            continue
        bad = [k for k, v in record.items() if _holds_surrogate(k) or _holds_surrogate(v)]
        if bad:
            detail = f"bytes that are not valid UTF-8 in {', '.join(repr(display_text(k)) for k in bad)}"
            rejected.append(QuarantinedRow(uri, row, line_no, Reason.NON_UTF8, detail, record))
            continue
        columns.update(dict.fromkeys(record))
        records.append(record)
        rows.append(row)
    names = list(columns)
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in records], dtype=object) for c in names})
    frame.index = _row_index(rows)
    return SourceTable(uri, "jsonl", digest, names, frame, rejected, lines)


def _holds_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return has_surrogate(value)
    if isinstance(value, list):
        return any(_holds_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    return False


def _read_parquet(uri: str, data: bytes, digest: str) -> SourceTable:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataValidationError(f"{uri}: not a readable Parquet file: {exc}") from exc
    columns = list(table.column_names)
    _check_unique_columns(uri, columns)
    frame = table.to_pandas(integer_object_nulls=True)
    frame.index = _row_index(range(1, len(frame) + 1))
    # Binary columns may hold text in any encoding: decode them per row like CSV, setting bad rows aside.
    rejected: list[QuarantinedRow] = []
    bad_rows: dict[int, list[str]] = {}
    for name in columns:
        if pa.types.is_binary(table.schema.field(name).type) or pa.types.is_large_binary(table.schema.field(name).type):
            decoded = []
            for row, value in zip(frame.index, frame[name].tolist(), strict=True):
                if isinstance(value, bytes):
                    try:
                        value = value.decode("utf-8")
                    except UnicodeDecodeError:
                        bad_rows.setdefault(row, []).append(name)
                decoded.append(value)
            frame[name] = pd.Series(decoded, index=frame.index, dtype=object)
    for row, names in sorted(bad_rows.items()):
        detail = f"bytes that are not valid UTF-8 in {', '.join(repr(n) for n in names)}"
        values = frame.loc[row].to_dict()
        rejected.append(QuarantinedRow(uri, row, None, Reason.NON_UTF8, detail, values))
    if bad_rows:
        frame = frame.drop(index=list(bad_rows))
    return SourceTable(uri, "parquet", digest, columns, frame, rejected)


def _check_unique_columns(uri: str, columns: list[str]) -> None:
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataValidationError(
            f"{uri}: column name(s) {', '.join(repr(c) for c in repeated)} appear more than once in the header; "
            "each column needs a unique name."
        )


def _row_index(rows: Any) -> pd.Index:
    return pd.Index(list(rows), dtype="int64", name="row")
