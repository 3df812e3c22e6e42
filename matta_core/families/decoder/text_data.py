"""Text corpora for language-model work: one passage a line in, validated deduplicated splits out (in memory).

Sources: a registered `text_corpus` data set ("wiki_sents", fetched and sha256-checked by the registry) or a user
file: `.txt` (one passage a line) or `.jsonl` (one object a line, the passage under `text_field`).

Conventions follow classifier data prep (`matta_core.data`): texts are whitespace-normalised; a line that is not
UTF-8 (`non_utf8`), holds no text (`empty_text`) or is not a usable JSON object (`malformed_row`) is quarantined
with its line number; the run fails when those exceed `max_bad_fraction`; the split of a text is the salted hash of
its normalised form (`assign_split`), so it never depends on row order and a text never lands in two splits.

One difference, on purpose: repeated passages are quarantined as `duplicate` (the first is kept) but do not count
as bad rows. Repeats are common and harmless in a corpus; they only need removing so the test split cannot hold a
training passage.

In a `.txt` file every line is a record (row = line, 1-based): an empty line is an empty passage, not a separator.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matta_core import storage
from matta_core.data.errors import DataValidationError, MissingColumnsError
from matta_core.data.quarantine import QuarantinedRow, Reason, display_text
from matta_core.data.registry import DATASETS, fetch_dataset, get_dataset
from matta_core.data.split import DEFAULT_SALT, SPLITS, assign_split, check_fractions, normalise_text, row_id
from matta_core.data.tables import read_table

TEXT_FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_CONTENT_FORMAT = "matta.text_corpus/v1"
_BOM = "\ufeff"
# Bad-row counts exclude duplicates: see the module docstring.
_BAD_REASONS = (Reason.NON_UTF8, Reason.MALFORMED_ROW, Reason.EMPTY_TEXT)


@dataclass
class TextSplits:
    """Deduplicated passages per split (each sorted by row id, so the lists follow from the content hash alone),
    the quarantined rows, and a JSON-ready manifest (`source`, `split`, `input_rows`, `row_counts`, `duplicates`,
    `quarantine`, `content_hash`)."""

    train: list[str]
    validation: list[str]
    test: list[str]
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[str]:
        """The passages of split `name` ("train", "validation" or "test")."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; allowed: {list(SPLITS)}")
        texts: list[str] = getattr(self, name)
        return texts

    def quarantine_jsonl(self) -> str:
        """The quarantined rows in the project's `quarantine.jsonl` format (one JSON record a line)."""
        return "".join(q.to_json() + "\n" for q in self.quarantined)


def load_text_corpus(
    source: str,
    *,
    text_field: str = "text",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    salt: str = DEFAULT_SALT,
    max_bad_fraction: float = 0.05,
    cache_dir: str | os.PathLike[str] | None = None,
    mirror_dir: str | os.PathLike[str] | None = None,
) -> TextSplits:
    """Read, validate, deduplicate and split a text corpus.

    Args:
        source: a registered `text_corpus` name ("wiki_sents") or a `.txt`/`.jsonl` file URI (path, file://, gs://).
        text_field: the key holding the passage in a `.jsonl` file.
        val_fraction, test_fraction: shares of the deduplicated passages hashed into validation and test.
        salt: the split salt; the same salt and text always give the same split.
        max_bad_fraction: the largest share of lines that may be unreadable or empty before the run fails.
        cache_dir, mirror_dir: where a registered corpus is fetched from/to (see `fetch_dataset`).

    Raises:
        DataValidationError: too many bad lines (the message counts them per reason and names the first ones),
            no passages at all, or (for `.jsonl`) no `text_field` column.
    """
    check_fractions(val_fraction, test_fraction)
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}.")
    uri, fmt, dataset = _resolve(source, cache_dir, mirror_dir)
    if not storage.exists(uri):
        raise FileNotFoundError(f"No such text corpus file: {uri}")
    if fmt == "txt":
        data = storage.read_bytes(uri)
        digest = hashlib.sha256(data).hexdigest()
        rows, quarantined = _read_txt(uri, data)
    else:
        digest, rows, quarantined = _read_jsonl(uri, text_field)
    input_rows = len(rows) + len(quarantined)
    _enforce_threshold(uri, input_rows, quarantined, max_bad_fraction)

    first_line: dict[str, int] = {}
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    for row, line, text in rows:
        if text in first_line:
            detail = f"same text as line {first_line[text]}, which is kept"
            quarantined.append(QuarantinedRow(uri, row, line, Reason.DUPLICATE, detail, {text_field: text}))
            continue
        first_line[text] = line
        splits[assign_split(text, salt=salt, val_fraction=val_fraction, test_fraction=test_fraction)].append(text)
    if not first_line:
        raise DataValidationError(f"{uri}: no usable passages ({len(quarantined)} of {input_rows} lines quarantined).")
    for name in SPLITS:
        splits[name].sort(key=row_id)
    quarantined.sort(key=lambda q: q.row)

    counts = Counter(q.reason for q in quarantined)
    bad = sum(counts[r] for r in _BAD_REASONS)
    manifest = {
        "dataset": dataset,
        "source": {"uri": uri, "format": fmt, "sha256": digest, "text_field": text_field if fmt == "jsonl" else None},
        "split": {
            "salt": salt,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "method": "sha256(salt + NUL + normalised text), first 8 bytes as a fraction of 2**64",
        },
        "input_rows": input_rows,
        "row_counts": {s: len(splits[s]) for s in SPLITS},
        "duplicates": counts[Reason.DUPLICATE],
        "quarantine": {
            "rows": len(quarantined),
            "bad_rows": bad,
            "bad_fraction": bad / input_rows if input_rows else 0.0,
            "max_bad_fraction": max_bad_fraction,
            "counts": {str(r): counts[r] for r in Reason if counts[r]},
        },
        "content_hash": text_content_hash(splits),
    }
    return TextSplits(splits["train"], splits["validation"], splits["test"], quarantined, manifest)


def text_content_hash(splits: dict[str, list[str]]) -> str:
    """sha256 over each split's [row_id, text] lines in row-id order: equal hashes mean equal split contents."""
    digest = hashlib.sha256(_CONTENT_FORMAT.encode())
    for name in SPLITS:
        digest.update(f"\n#split {name}\n".encode())
        for text in sorted(splits.get(name, []), key=row_id):
            digest.update(json.dumps([row_id(text), text], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _resolve(
    source: str, cache_dir: str | os.PathLike[str] | None, mirror_dir: str | os.PathLike[str] | None
) -> tuple[str, str, str]:
    """(file URI, format, data set name) for a registered corpus or a user file."""
    if source in DATASETS:
        spec = get_dataset(source)
        if spec.kind != "text_corpus":
            raise ValueError(
                f"dataset {source!r} is a {spec.kind} data set, not a text corpus; use prepare_dataset for it, "
                f"or one of the text corpora: {_corpora()}"
            )
        folder = fetch_dataset(source, cache_dir=cache_dir, mirror_dir=mirror_dir)
        return str(folder / spec.train_file), "txt", source
    suffix = Path(source.split("?", 1)[0]).suffix.lower()
    if suffix not in TEXT_FORMATS:
        raise ValueError(
            f"Cannot read {source} as a text corpus: extension {suffix or '(none)'!r} is not one of "
            f"{sorted(TEXT_FORMATS)}; registered corpora: {_corpora()}"
        )
    return source, TEXT_FORMATS[suffix], Path(source).stem


def _corpora() -> list[str]:
    return sorted(n for n, s in DATASETS.items() if s.kind == "text_corpus")


def _read_txt(uri: str, data: bytes) -> tuple[list[tuple[int, int, str]], list[QuarantinedRow]]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line does not start another
    rows: list[tuple[int, int, str]] = []  # (row, line, text); row == line in a .txt file
    quarantined: list[QuarantinedRow] = []
    for number, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = display_text(raw.decode("utf-8", "surrogateescape"))
            detail = f"bytes that are not valid UTF-8 at byte {exc.start} of the line"
            quarantined.append(QuarantinedRow(uri, number, number, Reason.NON_UTF8, detail, {"text": shown}))
            continue
        text = normalise_text(text.removeprefix(_BOM) if number == 1 else text)
        if not text:
            quarantined.append(QuarantinedRow(uri, number, number, Reason.EMPTY_TEXT, "empty or whitespace-only line"))
            continue
        rows.append((number, number, text))
    return rows, quarantined


def _read_jsonl(uri: str, text_field: str) -> tuple[str, list[tuple[int, int, str]], list[QuarantinedRow]]:
    # The shared table reader already sets aside lines that are not UTF-8 or not JSON objects, with line numbers.
    table = read_table(uri, "jsonl")
    if table.n_rows and text_field not in table.columns:
        raise MissingColumnsError(uri, [text_field], table.columns, hint="Pass text_field= naming the passage key.")
    quarantined = list(table.rejected)
    rows: list[tuple[int, int, str]] = []
    values = table.frame[text_field].tolist() if text_field in table.columns else []
    for row, value in zip(table.frame.index.tolist(), values, strict=True):
        line = table.lines.get(row, row)
        if value is not None and not isinstance(value, str):
            detail = f"{text_field!r} holds a {type(value).__name__}, not a string"
            quarantined.append(QuarantinedRow(uri, row, line, Reason.MALFORMED_ROW, detail, {text_field: value}))
            continue
        text = normalise_text(value or "")
        if not text:
            detail = f"no text under {text_field!r}"
            quarantined.append(QuarantinedRow(uri, row, line, Reason.EMPTY_TEXT, detail, {text_field: value}))
            continue
        rows.append((row, line, text))
    return table.sha256, rows, quarantined


def _enforce_threshold(uri: str, input_rows: int, quarantined: list[QuarantinedRow], limit: float) -> None:
    if input_rows == 0:
        raise DataValidationError(f"{uri}: the text corpus holds no lines.")
    bad = [q for q in quarantined if q.reason in _BAD_REASONS]
    fraction = len(bad) / input_rows
    if fraction > limit:
        counts = Counter(str(q.reason) for q in bad)
        first = "; ".join(f"line {q.line}: {q.reason} ({q.detail})" for q in bad[:5])
        raise DataValidationError(
            f"{uri}: {len(bad)} of {input_rows} lines ({fraction:.2%}) are unreadable or empty, above "
            f"max_bad_fraction={limit:.2%}. Per reason: {dict(sorted(counts.items()))}. First: {first}. Fix the "
            "lines (re-encode a non-UTF-8 file, e.g. `iconv -f latin1 -t utf-8`), or raise max_bad_fraction.",
            counts=counts,
            bad_fraction=fraction,
            max_bad_fraction=limit,
        )
