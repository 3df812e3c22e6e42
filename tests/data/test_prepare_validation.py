"""Every bad-input case, driven through `prepare_dataset` on small files built from real Banking77 rows.

Each test checks the reason and the quarantine record (file, row, line, original values), and that no row is lost:
rows kept + rows quarantined == rows in the input.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from matta_core.data import (
    DataSchema,
    DataValidationError,
    EmptyFileError,
    IncompletePreparedDataError,
    Manifest,
    MissingColumnsError,
    load_prepared,
    prepare_dataset,
)
from tests.data.helpers import MIRROR, banking_categories, read_quarantine, write_csv, write_jsonl, write_parquet

LABELS = tuple(banking_categories())


def assert_accounted(manifest: Manifest, out: Path, n_input: int) -> pd.DataFrame:
    """Kept + quarantined == input, in the manifest and in the files; returns all kept rows."""
    quarantine = read_quarantine(out)
    assert sum(manifest.input_rows.values()) == n_input
    assert sum(manifest.row_counts.values()) + len(quarantine) == n_input
    assert manifest.quarantine["rows"] == len(quarantine)
    assert sum(manifest.quarantine["counts"].values()) == len(quarantine)
    prepared = load_prepared(str(out))
    return pd.concat(prepared.splits.values(), ignore_index=True)


def by_reason(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r["reason"], []).append(r)
    return out


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_row_level_problems_in_each_format(tmp_path: Path, sample_rows: list[dict[str, str]], fmt: str) -> None:
    good = [{**r, "amount": float(i)} for i, r in enumerate(sample_rows[:30])]
    first = good[0]
    missing: Any = "" if fmt == "csv" else None  # how each format spells "no value"
    bad = [
        {"text": "", "label": "card_arrival", "amount": 1.0},  # row 31
        {"text": "  \t ", "label": "card_arrival", "amount": 1.0},  # row 32
        {"text": "How do I get a refund for this?", "label": missing, "amount": 1.0},  # row 33
        {"text": "Is my card on its way?", "label": "card_arival", "amount": 1.0},  # row 34
        {"text": "  " + first["text"].replace(" ", "  \n") + " ", "label": first["label"], "amount": 9.0},  # 35
        {"text": "Can I pay with Apple Pay?", "label": "apple_pay_or_google_pay", "amount": 1.0},  # row 36
        {"text": "Can I pay with Apple Pay?", "label": "card_acceptance", "amount": 1.0},  # row 37
        {"text": "What is the fee for this top up?", "label": "top_up_by_card_charge", "amount": math.inf},  # 38
    ]
    rows = good + bad
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        write_csv(path, rows, columns=("text", "label", "amount"))
    elif fmt == "jsonl":
        write_jsonl(path, rows)
    else:
        write_parquet(path, rows)
    out = tmp_path / "out"
    schema = DataSchema(feature_columns=("amount",), labels=LABELS)
    manifest = prepare_dataset(str(path), str(out), schema=schema, max_bad_fraction=0.25)

    kept = assert_accounted(manifest, out, n_input=38)
    assert sorted(kept["text"]) == sorted(" ".join(r["text"].split()) for r in good)
    assert kept["amount"].dtype == "float64" and kept["label"].dtype == "int64"
    assert manifest.quarantine["counts"] == {
        "non_utf8": 0,
        "malformed_row": 0,
        "control_chars": 0,
        "empty_text": 2,
        "missing_label": 1,
        "unknown_label": 1,
        "non_finite_feature": 1,
        "conflicting_label": 2,
        "leaks_into_test": 0,
        "duplicate": 1,
        "unseen_test_label": 0,
    }
    records = by_reason(read_quarantine(out))
    assert [r["row"] for r in records["empty_text"]] == [31, 32]
    assert records["missing_label"][0]["row"] == 33
    assert "'label'" in records["missing_label"][0]["detail"]
    unknown = records["unknown_label"][0]
    assert unknown["row"] == 34 and unknown["values"]["label"] == "card_arival"
    assert "did you mean 'card_arrival'?" in unknown["detail"]
    dup = records["duplicate"][0]
    assert dup["row"] == 35 and dup["detail"] == "same text as row 1, which is kept"
    assert dup["values"]["text"] == bad[4]["text"]  # the original, not the normalised text
    assert [r["row"] for r in records["conflicting_label"]] == [36, 37]
    assert "'apple_pay_or_google_pay', 'card_acceptance'" in records["conflicting_label"][0]["detail"]
    assert records["non_finite_feature"][0]["row"] == 38
    assert "'amount'" in records["non_finite_feature"][0]["detail"]
    assert all(r["file"] == str(path) for r in read_quarantine(out))
    if fmt != "parquet":
        # a header (CSV) shifts the line by one; JSONL has none. The duplicate's text spans lines in CSV.
        assert records["empty_text"][0]["line"] == (32 if fmt == "csv" else 31)
    else:
        assert records["empty_text"][0]["line"] is None


def test_csv_non_utf8_row_is_quarantined_and_the_rest_kept(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    data = write_csv(tmp_path / "good.csv", sample_rows[:20]).read_bytes()
    bad_row = b"I paid in a caf\xe9 and was charged twice,transaction_charged_twice\r\n"
    path = tmp_path / "latin1.csv"
    path.write_bytes(data + bad_row + b"Why was I charged for a transfer?,transfer_fee_charged\r\n")
    out = tmp_path / "out"
    manifest = prepare_dataset(str(path), str(out), schema=DataSchema(labels=LABELS), max_bad_fraction=0.1)
    kept = assert_accounted(manifest, out, n_input=22)
    assert "Why was I charged for a transfer?" in set(kept["text"])
    [record] = read_quarantine(out)
    assert (record["row"], record["line"], record["reason"]) == (21, 22, "non_utf8")
    assert record["values"] == {
        "text": "I paid in a caf\\xe9 and was charged twice",
        "label": "transaction_charged_twice",
    }


def test_jsonl_non_utf8_line_is_quarantined(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", sample_rows[:20])
    path.write_bytes(path.read_bytes() + b'{"text": "\xff\xfe top up", "label": "top_up_failed"}\n')
    out = tmp_path / "out"
    manifest = prepare_dataset(str(path), str(out), max_bad_fraction=0.1)
    assert_accounted(manifest, out, n_input=21)
    [record] = read_quarantine(out)
    assert (record["row"], record["line"], record["reason"]) == (21, 21, "non_utf8")
    assert record["values"]["text"] == "\\xff\\xfe top up"


def test_train_text_found_in_test_source_leaks(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    train_rows, test_rows = sample_rows[:30], sample_rows[30:40]
    leaked = test_rows[2]  # the same text, with other spacing, also in the training file
    train = write_csv(tmp_path / "train.csv", [*train_rows, {**leaked, "text": f" {leaked['text']}  "}])
    test = write_csv(tmp_path / "test.csv", test_rows)
    out = tmp_path / "out"
    # 40 rows over 37 intents: most test labels have no training row. Kept (with a warning): the leak is under test.
    manifest = prepare_dataset(
        str(train), str(out), test_source=str(test), max_bad_fraction=0.05, unseen_test_labels="keep"
    )
    kept = assert_accounted(manifest, out, n_input=41)
    assert manifest.split["test_from"] == "source"
    assert manifest.row_counts["test"] == 10
    assert manifest.row_counts["train"] + manifest.row_counts["validation"] == 30
    assert manifest.input_rows == {"train": 31, "test": 10}
    [record] = read_quarantine(out)
    assert (record["file"], record["row"], record["reason"]) == (str(train), 31, "leaks_into_test")
    assert str(test) in record["detail"]
    assert len(kept) == 40


def test_missing_column_names_file_missing_and_found_columns(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    path = write_csv(
        tmp_path / "intents.csv", [{"text": r["text"], "intent": r["label"]} for r in sample_rows], ("text", "intent")
    )
    out = tmp_path / "out"
    with pytest.raises(MissingColumnsError) as err:
        prepare_dataset(str(path), str(out))
    message = str(err.value)
    assert f"{path}: missing column(s) 'label' required by the schema; columns found: 'text', 'intent'." in message
    assert "In the config, set data.label_column to the column that holds the labels" in message
    assert "(here probably data.label_column: intent)" in message
    assert not out.exists()  # a whole-file error writes nothing


def test_missing_feature_column_in_test_source(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    train = write_csv(
        tmp_path / "train.csv", [{**r, "amount": 1} for r in sample_rows[:30]], ("text", "label", "amount")
    )
    test = write_csv(tmp_path / "test.csv", sample_rows[30:])
    with pytest.raises(MissingColumnsError, match=r"test.csv: missing column\(s\) 'amount'.*found: 'text', 'label'"):
        prepare_dataset(
            str(train), str(tmp_path / "out"), test_source=str(test), schema=DataSchema(feature_columns=("amount",))
        )


def test_too_many_bad_rows_fails_but_writes_the_quarantine(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    rows = [*sample_rows[:20], *({"text": " ", "label": "card_arrival"} for _ in range(3))]
    rows.append({"text": "Can I change my PIN at an ATM?", "label": "change_pin_atm"})
    path = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out"
    with pytest.raises(DataValidationError) as err:
        prepare_dataset(str(path), str(out), schema=DataSchema(labels=LABELS))
    message = str(err.value)
    assert "4 of 24 input rows (16.67%) were quarantined, above data.max_bad_fraction=5.00%" in message
    assert "Quarantined per reason: empty_text=3, unknown_label=1." in message
    assert str(out / "quarantine.jsonl") in message
    assert err.value.counts == {"empty_text": 3, "unknown_label": 1}
    assert [r["row"] for r in read_quarantine(out)] == [21, 22, 23, 24]
    assert sorted(p.name for p in out.iterdir()) == ["quarantine.jsonl"]  # no splits, no manifest
    with pytest.raises(IncompletePreparedDataError, match=r"has no manifest\.json"):
        load_prepared(str(out))


def test_failed_rerun_leaves_no_stale_manifest_and_a_good_rerun_recovers(
    tmp_path: Path, sample_rows: list[dict[str, str]]
) -> None:
    out = tmp_path / "out"
    good = write_csv(tmp_path / "good.csv", sample_rows)
    first = prepare_dataset(str(good), str(out))
    bad = write_csv(tmp_path / "bad.csv", [*sample_rows[:10], *({"text": "", "label": "x"} for _ in range(5))])
    with pytest.raises(DataValidationError):
        prepare_dataset(str(bad), str(out))
    assert not (out / "manifest.json").exists() and not (out / "train.parquet").exists()
    again = prepare_dataset(str(good), str(out))
    assert again.content_hash == first.content_hash
    assert read_quarantine(out) == []
    assert load_prepared(str(out)).content_hash == first.content_hash


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"h.csv: no data rows to prepare"):
        prepare_dataset(str(header_only), str(tmp_path / "out"))
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(EmptyFileError, match=r"e.csv: the file is empty \(no header, no data rows\); expected a "
                       r"header row naming the columns \('text', 'label'\)"):
        prepare_dataset(str(empty), str(tmp_path / "out"))
    blank = tmp_path / "b.jsonl"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(EmptyFileError, match=r"b.jsonl: the file is empty.*one JSON object per line"):
        prepare_dataset(str(blank), str(tmp_path / "out"))


def test_parquet_integer_labels_and_nulls(tmp_path: Path, sample_rows: list[dict[str, str]]) -> None:
    names = sorted({r["label"] for r in sample_rows})
    rows: list[dict[str, Any]] = [{"text": r["text"], "label": names.index(r["label"])} for r in sample_rows]
    rows.append({"text": "Where is my refund?", "label": None})
    schema = pa.schema([("text", pa.string()), ("label", pa.int64())])
    path = write_parquet(tmp_path / "ints.parquet", rows, schema)
    out = tmp_path / "out"
    manifest = prepare_dataset(str(path), str(out), max_bad_fraction=0.05)
    assert_accounted(manifest, out, n_input=41)
    assert set(manifest.label_map) == {str(i) for i in range(len(names))}
    assert read_quarantine(out)[0]["values"] == {"text": "Where is my refund?", "label": None}


def test_registry_data_sets_without_labels_or_with_own_test_split_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'wiki_sents' is a text_corpus"):
        prepare_dataset("wiki_sents", str(tmp_path / "out"), mirror_dir=MIRROR)
    with pytest.raises(ValueError, match="'banking77' has its own test split"):
        prepare_dataset("banking77", str(tmp_path / "out"), mirror_dir=MIRROR, test_source="x.csv")


def test_a_file_in_another_encoding_fails_with_a_re_encode_hint(
    tmp_path: Path, sample_rows: list[dict[str, str]]
) -> None:
    rows = [{**r, "text": r["text"] + " – café"} for r in sample_rows[:10]]
    path = tmp_path / "latin1.csv"
    path.write_bytes(write_csv(tmp_path / "u.csv", rows).read_text(encoding="utf-8").encode("cp1252"))
    with pytest.raises(DataValidationError, match=r"non_utf8=10\..*iconv -f latin1 -t utf-8"):
        prepare_dataset(str(path), str(tmp_path / "out"))
    assert len(read_quarantine(tmp_path / "out")) == 10


def test_schema_rejects_ambiguous_declarations() -> None:
    with pytest.raises(ValueError, match="both 'text'"):
        DataSchema(label_column="text")
    with pytest.raises(ValueError, match=r"\['row_id'\] are reserved"):
        DataSchema(feature_columns=("row_id",))
    with pytest.raises(ValueError, match=r"labels lists \['a'\] more than once"):
        DataSchema(labels=("a", "b", "a"))
    assert DataSchema(labels=[1, 2]).labels == ("1", "2")  # type: ignore[arg-type]
