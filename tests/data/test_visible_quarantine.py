"""Every dropped or suspicious row is visible: the prepare step prints how many rows were quarantined, per reason,
and where they are listed; control characters are quarantined (or, when asked, cleaned with a count).

Driven through `prepare_step` (what the pipeline and `matta demo` run) on real Banking77 rows written to files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matta_core.config import DataSection
from matta_core.data import DataValidationError, load_prepared
from matta_core.families.classifier.prepare_step import prepare_step
from tests.data.helpers import banking_rows, read_quarantine, write_csv, write_jsonl


@pytest.fixture
def rows() -> list[dict[str, str]]:
    """49 distinct single-line Banking77 rows."""
    picked = [r for r in banking_rows() if "\n" not in r["text"]][::50][:49]
    assert len({r["text"] for r in picked}) == 49
    return picked


def test_two_percent_latin1_rows_are_printed_per_reason_with_where_they_are_listed(  # type: ignore[no-untyped-def]
    tmp_path: Path, rows: list[dict[str, str]], capsys: pytest.CaptureFixture[str], fault_record
) -> None:
    path = write_csv(tmp_path / "intents.csv", rows)
    path.write_bytes(path.read_bytes() + b"I paid in a caf\xe9 and was charged twice,transaction_charged_twice\r\n")
    out = tmp_path / "prepared"
    manifest = prepare_step(DataSection(source=str(path)), str(out))

    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == (
        f"quarantined 1 of 50 input rows (2.00%; data.max_bad_fraction 5.00%): non_utf8=1; listed in "
        f"{out}/quarantine.jsonl"
    )
    assert printed[0].startswith(f"prepared intents: {manifest.row_counts['train']} train / ")
    [record] = read_quarantine(out)
    assert (record["row"], record["reason"]) == (50, "non_utf8")
    assert manifest.quarantine["rows"] == 1 and manifest.quarantine["counts"]["non_utf8"] == 1
    fault_record("2 % of rows not UTF-8 (latin-1)", fault="one latin-1 row (é as byte 0xE9) among 50 UTF-8 rows",
                 sees=printed[1], kept="the 49 good rows; the bad row listed, with its row number and reason, in "
                 "quarantine.jsonl; the run goes on (under data.max_bad_fraction)")


def test_one_broken_jsonl_line_is_printed(  # type: ignore[no-untyped-def]
    tmp_path: Path, rows: list[dict[str, str]], capsys: pytest.CaptureFixture[str], fault_record
) -> None:
    path = write_jsonl(tmp_path / "intents.jsonl", rows)
    text = path.read_text(encoding="utf-8").splitlines()
    text.insert(10, '{"text": "Where is my card?", "label": "card_arrival"')  # the closing brace lost
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    out = tmp_path / "prepared"
    prepare_step(DataSection(source=str(path)), str(out))
    line = (
        "quarantined 1 of 50 input rows (2.00%; data.max_bad_fraction 5.00%): malformed_row=1; listed in "
        f"{out}/quarantine.jsonl"
    )
    assert line in capsys.readouterr().out.splitlines()
    [record] = read_quarantine(out)
    assert (record["line"], record["reason"]) == (11, "malformed_row")
    fault_record("A broken JSONL line", fault="one line of a JSONL file lost its closing brace", sees=line,
                 kept="every other line; the broken one listed, with its line number, in quarantine.jsonl")


def test_no_quarantine_says_so(tmp_path: Path, rows: list[dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    prepare_step(DataSection(source=str(write_csv(tmp_path / "in.csv", rows))), str(tmp_path / "prepared"))
    assert "no rows quarantined (49 input rows)" in capsys.readouterr().out.splitlines()


def test_max_bad_fraction_still_fails_the_run_above_it(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    path = write_csv(tmp_path / "intents.csv", rows)
    path.write_bytes(path.read_bytes() + b"caf\xe9,card_arrival\r\n")
    with pytest.raises(DataValidationError) as err:
        prepare_step(DataSection(source=str(path), max_bad_fraction=0.01), str(tmp_path / "prepared"))
    assert "1 of 50 input rows (2.00%) were quarantined, above data.max_bad_fraction=1.00%" in str(err.value)
    assert "raise data.max_bad_fraction to accept them" in str(err.value)
    assert not (tmp_path / "prepared" / "manifest.json").exists()


def test_control_characters_are_quarantined_by_default(  # type: ignore[no-untyped-def]
    tmp_path: Path, rows: list[dict[str, str]], capsys: pytest.CaptureFixture[str], fault_record
) -> None:
    bad = [
        {"text": "My card\x00 has not arrived yet", "label": "card_arrival"},  # row 50: NUL
        {"text": "\x1b[31mWhy was I charged twice?\x1b[0m", "label": "transaction_charged_twice"},  # 51: ESC
        {"text": "Top up failed", "label": "top_up_failed\x7f"},  # row 52: DEL in the label
        {"text": "Can I\tget a\r\nrefund?", "label": "request_refund"},  # row 53: tab, CR, LF are fine
    ]
    path = write_jsonl(tmp_path / "intents.jsonl", [*rows, *bad])
    out = tmp_path / "prepared"
    manifest = prepare_step(DataSection(source=str(path), max_bad_fraction=0.1), str(out))

    records = read_quarantine(out)
    assert [(r["row"], r["reason"]) for r in records] == [(50, "control_chars"), (51, "control_chars"),
                                                         (52, "control_chars")]
    assert "U+0000 (NUL) in text column 'text'" in records[0]["detail"]
    assert "U+001B (ESC) in text column 'text'" in records[1]["detail"]
    assert "U+007F (DEL) in label column 'label'" in records[2]["detail"]
    assert records[0]["values"]["text"] == "My card\x00 has not arrived yet"  # the original, as JSON "\u0000"
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("quarantined ")]
    assert "quarantined 3 of 53 input rows (5.66%; data.max_bad_fraction 10.00%): control_chars=3" in line
    kept = {t for frame in load_prepared(str(out)).splits.values() for t in frame["text"]}
    assert "Can I get a refund?" in kept
    assert "control_chars_cleaned" not in {w["code"] for w in manifest.warnings}
    fault_record("Control characters in rows", fault="NUL, ESC and DEL in texts and labels", sees=line,
                 kept="the other rows (tab and CR/LF are fine); the 3 rows listed, naming the character and column, "
                 "in quarantine.jsonl; data.control_chars: clean removes them instead, with a count")


def test_control_characters_can_be_cleaned_with_a_count(
    tmp_path: Path, rows: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = [
        {"text": "My ca\x00rd has not arrived yet", "label": "card_arrival"},
        {"text": "Why was I\x0ccharged twice?", "label": "transaction_charged_twice"},
    ]
    path = write_jsonl(tmp_path / "intents.jsonl", [*rows, *bad])
    out = tmp_path / "prepared"
    manifest = prepare_step(DataSection(source=str(path), control_chars="clean"), str(out))

    assert read_quarantine(out) == []
    kept = {t for frame in load_prepared(str(out)).splits.values() for t in frame["text"]}
    # A NUL inside a word is removed; a whitespace-like control (form feed) becomes a space.
    assert {"My card has not arrived yet", "Why was I charged twice?"} <= kept
    [cleaned] = [w for w in manifest.warnings if w["code"] == "control_chars_cleaned"]
    assert cleaned["rows"] == 2
    expected = (
        f"warning: 2 row(s) had control characters (NUL, ESC, ...) removed from their text or label "
        f"(data.control_chars: clean): 2 in {path}. Set data.control_chars: quarantine to set them aside."
    )
    assert expected in capsys.readouterr().err.splitlines()
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["warnings"] == manifest.warnings


def test_a_whole_jsonl_file_in_latin1_is_an_encoding_problem_not_missing_columns(
    tmp_path: Path, rows: list[dict[str, str]]
) -> None:
    # No line decodes, so no column is ever seen: the answer is the re-encode hint, not "missing column 'text'".
    path = tmp_path / "intents.jsonl"
    lines = [json.dumps({**r, "text": r["text"] + " café"}, ensure_ascii=False) for r in rows[:10]]
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"10 of 10 input rows \(100.00%\).*non_utf8=10\..*iconv -f latin1"):
        prepare_step(DataSection(source=str(path)), str(tmp_path / "prepared"))
