"""Reading user tables: formats, row numbering, and bad bytes that must not crash the reader."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from matta_core import storage
from matta_core.data import Reason, load_table, read_table
from tests.data.helpers import write_csv, write_jsonl, write_parquet


def test_csv_jsonl_parquet_read_the_same_rows(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    rows = sample_rows[:5]
    for path in (
        write_csv(tmp_path / "a.csv", rows),
        write_jsonl(tmp_path / "a.jsonl", rows),
        write_parquet(tmp_path / "a.parquet", rows),
    ):
        frame = load_table(str(path))
        assert frame.index.tolist() == [1, 2, 3, 4, 5]
        assert frame["text"].tolist() == [r["text"] for r in rows]
        assert frame["label"].tolist() == [r["label"] for r in rows]


def test_format_override_and_unknown_extension(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    path = write_jsonl(tmp_path / "rows.txt", sample_rows[:2])
    with pytest.raises(ValueError, match=r"Cannot tell the format of .*rows.txt.*'.txt'.*pass fmt="):
        load_table(str(path))
    assert len(load_table(str(path), fmt="jsonl")) == 2
    with pytest.raises(ValueError, match="Unsupported table format 'xlsx'"):
        load_table(str(path), fmt="xlsx")


def test_missing_file_names_the_uri(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"No such data file: .*nope.csv"):
        load_table(str(tmp_path / "nope.csv"))


def test_csv_non_utf8_row_is_set_aside_and_every_other_row_kept(
    tmp_path: Path, sample_rows: list[dict[str, str]]
) -> None:
    good = write_csv(tmp_path / "good.csv", sample_rows[:4]).read_bytes()
    # Row 3 is a quoted two-line text, row 4 holds a Latin-1 byte: row and line numbers must both be right.
    lines = good.split(b"\r\n")
    data = b"\r\n".join([*lines[:3], b'"two\r\nlines",card_arrival', b"caf\xe9 card payment,card_payment_fee_charged"])
    data += b"\r\n" + b"\r\n".join(lines[3:])
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    table = read_table(str(path))
    assert table.n_rows == 6
    assert table.frame.index.tolist() == [1, 2, 3, 5, 6]
    assert table.frame.loc[3, "text"] == "two\r\nlines"
    [bad] = table.rejected
    assert (bad.row, bad.line, bad.reason) == (4, 6, Reason.NON_UTF8)
    assert "'text'" in bad.detail
    assert '"caf\\\\xe9 card payment"' in bad.to_json()  # the byte is shown, escaped, in the quarantine record
    assert table.lines[5] == 7


def test_csv_row_with_wrong_field_count_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("text,label\nhello there,greeting\njust one field\n", encoding="utf-8")
    table = read_table(str(path))
    assert len(table.frame) == 1
    assert (table.rejected[0].reason, table.rejected[0].detail) == (
        Reason.MALFORMED_ROW,
        "1 field(s) where the header has 2",
    )


def test_jsonl_bad_bytes_bad_json_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(
        b'{"text": "I still have not received my new card", "label": "card_arrival"}\n'
        b"\n"
        b'{"text": "caf\xe9", "label": "card_arrival"}\n'
        b'{"text": "broken json", "label": \n'
        b'["a list"]\n'
        b'{"text": "How do I top up?", "label": "top_up_failed"}\n'
    )
    table = read_table(str(path))
    assert table.frame.index.tolist() == [1, 5]  # rows count records; the blank line is not one
    reasons = [(q.row, q.line, q.reason) for q in table.rejected]
    assert reasons == [(2, 3, Reason.NON_UTF8), (3, 4, Reason.MALFORMED_ROW), (4, 5, Reason.MALFORMED_ROW)]
    assert table.rejected[0].values == {"text": "caf\udce9", "label": "card_arrival"}
    assert '"caf\\\\xe9"' in table.rejected[0].to_json()


def test_parquet_binary_text_is_decoded_per_row(tmp_path: Path) -> None:
    schema = pa.schema([("text", pa.binary()), ("label", pa.int64())])
    rows = [{"text": b"Where is my card?", "label": 3}, {"text": b"\xff\xfe", "label": None}]
    table = read_table(str(write_parquet(tmp_path / "b.parquet", rows, schema)))
    assert table.frame["text"].tolist() == ["Where is my card?"]
    assert table.frame["label"].tolist() == [3]
    assert table.rejected[0].row == 2 and table.rejected[0].reason == Reason.NON_UTF8


def test_reads_from_gcs(bucket: str, tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    for name, writer in (("t.csv", write_csv), ("t.parquet", write_parquet), ("t.jsonl", write_jsonl)):
        uri = storage.join(bucket, "in", name)
        storage.upload_file(writer(tmp_path / name, sample_rows[:3]), uri)
        table = read_table(uri)
        assert table.uri == uri and table.sha256 == storage.sha256(uri)
        assert table.frame["text"].tolist() == [r["text"] for r in sample_rows[:3]]
