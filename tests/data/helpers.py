"""Helpers for the data tests: the checked-in mirror of the public data sets, real Banking77 rows, and writers for
small CSV/JSONL/Parquet inputs."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: The offline mirror of the registered data sets (tests and CI only; the library never needs it).
MIRROR = (Path(__file__).resolve().parents[2] / "../shared/data").resolve()
BANKING = MIRROR / "banking77"


def banking_rows() -> list[dict[str, str]]:
    """All Banking77 training rows, as fresh {"text", "label"} dicts in file order."""
    return [dict(r) for r in _banking_rows()]


@functools.cache
def _banking_rows() -> tuple[dict[str, str], ...]:
    with (BANKING / "train.csv").open(encoding="utf-8", newline="") as fh:
        return tuple({"text": r["text"], "label": r["category"]} for r in csv.DictReader(fh))


def banking_categories() -> list[str]:
    """The 77 Banking77 intent names."""
    return json.loads((BANKING / "categories.json").read_text(encoding="utf-8"))


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] = ("text", "label")) -> Path:
    """Write rows as CSV (UTF-8, header first)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([r.get(c, "") for c in columns])
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    return path


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write rows as JSON lines."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: Sequence[dict[str, Any]], schema: pa.Schema | None = None) -> Path:
    """Write rows as Parquet."""
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), path)
    return path


def read_quarantine(out: str | Path) -> list[dict[str, Any]]:
    """The quarantine records of a (local) prepared folder."""
    text = (Path(out) / "quarantine.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]
