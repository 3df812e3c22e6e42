"""`prepare_dataset`: a registered data set or a user file in, validated deterministic splits and a manifest out.

Flow: resolve the source (registry fetch or user URI) -> read each file (`tables`) -> check columns (whole-file
errors stop here, before anything is written) -> validate rows (`validate`) -> split (`split`) -> clear the output
folder's manifest and splits -> test labels no training row has (`label_checks`: an error, or quarantined, or
kept with a warning) -> write quarantine.jsonl -> enforce `max_bad_fraction` -> write the split Parquet files ->
label warnings -> write manifest.json last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from matta_core import storage
from matta_core.data.control_chars import CONTROL_CHAR_MODES
from matta_core.data.errors import DataValidationError
from matta_core.data.label_checks import UNSEEN_TEST_LABEL_MODES, check_unseen_test_labels, label_warnings
from matta_core.data.manifest import MANIFEST_FILE, Manifest, content_hash, imbalance_report, label_map_for
from matta_core.data.prepared import parquet_bytes, split_file
from matta_core.data.quarantine import QUARANTINE_FILE, Reason
from matta_core.data.registry import DATASETS, fetch_dataset
from matta_core.data.schema import DataSchema
from matta_core.data.split import DEFAULT_SALT, SPLITS, assign_split, check_fractions, row_id
from matta_core.data.tables import SourceTable, read_table
from matta_core.data.validate import (
    ValidatedSource,
    ValidRow,
    check_columns,
    drop_conflicting_labels,
    drop_duplicates,
    drop_test_leaks,
    validate_rows,
)

log = logging.getLogger(__name__)

_NON_UTF8_HINT = (
    " Rows marked non_utf8 hold bytes that are not UTF-8: if the whole file is in another encoding, re-encode it "
    "(e.g. `iconv -f latin1 -t utf-8`)."
)


@dataclass
class _Source:
    dataset: str
    schema: DataSchema
    train_uri: str
    test_uri: str | None
    record: dict[str, Any]


def prepare_dataset(
    source: str,
    out_uri: str,
    *,
    schema: DataSchema | None = None,
    test_source: str | None = None,
    max_bad_fraction: float = 0.05,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    salt: str = DEFAULT_SALT,
    min_rows_per_label: int = 5,
    control_chars: str = "quarantine",
    unseen_test_labels: str = "error",
    name: str | None = None,
    fmt: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    mirror_dir: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Validate, split and write a labelled text data set under `out_uri`; return its manifest.

    Args:
        source: a registered data set name ("banking77") or a CSV/JSONL/Parquet file URI (path, file://, gs://).
        out_uri: the output folder (local or gs://). A rerun overwrites it.
        schema: which columns to read; default: the registry's schema, or `DataSchema()` for a user file.
        test_source: a user file holding the test split. Without one (and for sources without their own test
            split) `test_fraction` of the rows go to test by the same salted hash as validation.
        max_bad_fraction: the largest share of input rows that may be quarantined before the run fails.
        val_fraction / test_fraction: shares of the training pool for validation / test (test_fraction is
            ignored when the source has a test split).
        salt: changes which rows fall in which split; recorded in the manifest.
        min_rows_per_label: labels with fewer training rows are flagged in the imbalance report and warned about,
            and so is an average below it (more labels than the rows can support).
        control_chars: rows whose text or label holds control characters (NUL, ESC, ...; not tab, newline, CR):
            "quarantine" sets them aside, "clean" keeps them with the characters removed and warns with the count.
        unseen_test_labels: test rows of `test_source` (or a registry test file) whose label no training row has:
            "error" raises `UnseenTestLabelsError`, "drop" quarantines them, "keep" keeps them with a warning.
        name: data set name for the manifest (default: registry name or the file's stem).
        fmt: table format when the extension does not tell ("csv", "jsonl", "parquet").
        cache_dir, mirror_dir: passed to `fetch_dataset` for registry sources.

    Raises:
        EmptyFileError, MissingColumnsError: a source is empty or lacks a schema column (nothing is written).
        UnseenTestLabelsError: test labels no training row has, with unseen_test_labels="error" (the folder is
            left without a manifest).
        DataValidationError: too many rows quarantined (quarantine.jsonl is still written), no data rows, or no
            valid training rows.

    The manifest's `warnings` list what did not stop the run but makes its numbers mean less (`label_checks`).
    """
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}.")
    # Checked before any file is read, so a typo does not wait for a large download to fail.
    if control_chars not in CONTROL_CHAR_MODES:
        raise ValueError(f"control_chars must be one of {list(CONTROL_CHAR_MODES)}, got {control_chars!r}.")
    if unseen_test_labels not in UNSEEN_TEST_LABEL_MODES:
        raise ValueError(
            f"unseen_test_labels must be one of {list(UNSEEN_TEST_LABEL_MODES)}, got {unseen_test_labels!r}."
        )
    src = _resolve_source(source, schema, test_source, name, cache_dir, mirror_dir)
    if src.test_uri is not None:
        test_fraction = 0.0
    check_fractions(val_fraction, test_fraction)

    tables = {"train": read_table(src.train_uri, fmt)}
    if src.test_uri is not None:
        tables["test"] = read_table(src.test_uri, fmt)
    for table in tables.values():
        check_columns(table, src.schema)
    for role, table in tables.items():
        src.record["files"][role]["sha256"] = table.sha256

    sources = _validate(tables, src.schema, control_chars)
    rows = _assign_splits(sources, salt=salt, val_fraction=val_fraction, test_fraction=test_fraction)

    _clear_outputs(out_uri)
    data_warnings = check_unseen_test_labels(rows, sources.get("test"), unseen_test_labels)
    quarantined = sorted(
        (q for s in sources.values() for q in s.quarantined), key=lambda q: (q.file != src.train_uri, q.file, q.row)
    )
    quarantine_uri = storage.join(out_uri, QUARANTINE_FILE)
    storage.write_bytes(quarantine_uri, "".join(q.to_json() + "\n" for q in quarantined).encode("utf-8"))
    quarantine = _quarantine_summary(sources, len(quarantined), tables, max_bad_fraction)
    _enforce_threshold(src, quarantine, quarantine_uri)

    labels = src.schema.labels if src.schema.labels is not None else [r.label for rs in rows.values() for r in rs]
    label_map = label_map_for(labels)
    frames = {split: _split_frame(rows[split], label_map, src.schema) for split in SPLITS}
    _check_result(src, frames)

    files = {}
    for split in SPLITS:
        data = parquet_bytes(frames[split], src.schema)
        storage.write_bytes(storage.join(out_uri, split_file(split)), data)
        files[split] = {"path": split_file(split), "sha256": _sha256(data), "rows": len(frames[split])}

    label_counts = {s: dict(sorted(Counter(frames[s]["label_name"].tolist()).items())) for s in SPLITS}
    data_warnings += _cleaned_warning(sources, control_chars)
    data_warnings += label_warnings(label_counts["train"], list(label_map), min_rows_per_label)
    manifest = Manifest(
        dataset=src.dataset,
        source=src.record,
        schema=src.schema,
        label_map=label_map,
        split={
            "salt": salt,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "test_from": "source" if src.test_uri is not None else "hash",
            "method": "sha256(salt + NUL + normalised text), first 8 bytes as a fraction of 2**64",
        },
        row_counts={s: len(frames[s]) for s in SPLITS},
        input_rows={role: t.n_rows for role, t in tables.items()},
        quarantine=quarantine,
        label_counts=label_counts,
        imbalance=imbalance_report(label_counts["train"], label_map, min_rows_per_label),
        files=files,
        content_hash=content_hash(frames, label_map, src.schema),
        created_by=_created_by(),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        warnings=data_warnings,
    )
    # Last write: its presence is what marks the folder as a finished run.
    storage.write_text(storage.join(out_uri, MANIFEST_FILE), manifest.to_json())
    log.info(
        "prepared %s -> %s: %s rows, %d quarantined, content_hash %s",
        src.dataset,
        out_uri,
        manifest.row_counts,
        len(quarantined),
        manifest.content_hash,
    )
    return manifest


def _resolve_source(
    source: str,
    schema: DataSchema | None,
    test_source: str | None,
    name: str | None,
    cache_dir: str | os.PathLike[str] | None,
    mirror_dir: str | os.PathLike[str] | None,
) -> _Source:
    if source in DATASETS:
        spec = DATASETS[source]
        if spec.kind != "classification":
            raise ValueError(
                f"{source!r} is a {spec.kind} (text without labels); prepare_dataset needs labelled data. "
                f"Use fetch_dataset({source!r}) to get its files."
            )
        if test_source is not None:
            raise ValueError(f"{source!r} has its own test split; test_source is only for user files.")
        folder = fetch_dataset(source, cache_dir=cache_dir, mirror_dir=mirror_dir)
        roles = {"train": spec.train_file, "test": spec.test_file, "labels": spec.labels_file}
        record = {
            "kind": "registry",
            "name": spec.name,
            "homepage": spec.source,
            "license": spec.license,
            "license_url": spec.license_url,
            "citation": spec.citation,
            "files": {
                role: {"name": f, "url": spec.file(f).url, "sha256": spec.file(f).sha256}
                for role, f in roles.items()
                if f is not None
            },
        }
        test_uri = str(folder / spec.test_file) if spec.test_file else None
        return _Source(
            name or spec.name, schema or spec.schema(folder), str(folder / spec.train_file), test_uri, record
        )
    files = {"train": {"uri": source}}
    if test_source is not None:
        files["test"] = {"uri": test_source}
    stem = Path(source.rstrip("/").rsplit("/", 1)[-1]).stem
    return _Source(name or stem, schema or DataSchema(), source, test_source, {"kind": "file", "files": files})


def _validate(tables: dict[str, SourceTable], schema: DataSchema, control_chars: str) -> dict[str, ValidatedSource]:
    sources: dict[str, ValidatedSource] = {}
    if "test" in tables:
        test = validate_rows(tables["test"], schema, control_chars=control_chars)
        drop_conflicting_labels(test)
        drop_duplicates(test)
        sources["test"] = test
    train = validate_rows(tables["train"], schema, control_chars=control_chars)
    drop_conflicting_labels(train)
    if "test" in sources:
        drop_test_leaks(train, sources["test"].texts, tables["test"].uri)
    drop_duplicates(train)
    sources["train"] = train
    return sources


def _cleaned_warning(sources: dict[str, ValidatedSource], control_chars: str) -> list[dict[str, Any]]:
    cleaned = {role: s.cleaned for role, s in sorted(sources.items()) if s.cleaned}
    if not cleaned:
        return []
    per_file = ", ".join(f"{n} in {sources[role].table.uri}" for role, n in cleaned.items())
    message = (
        f"{sum(cleaned.values())} row(s) had control characters (NUL, ESC, ...) removed from their text or label "
        f"(data.control_chars: {control_chars}): {per_file}. Set data.control_chars: quarantine to set them aside."
    )
    return [{"code": "control_chars_cleaned", "message": message, "rows": sum(cleaned.values()), "by_source": cleaned}]


def _clear_outputs(out_uri: str) -> None:
    # The manifest goes first: from here until the new one is written the folder reads as incomplete, so a
    # reader can never pair an old manifest with new split files.
    storage.delete(storage.join(out_uri, MANIFEST_FILE))
    for name in (*(split_file(s) for s in SPLITS), QUARANTINE_FILE):
        storage.delete(storage.join(out_uri, name))


def _quarantine_summary(
    sources: dict[str, ValidatedSource],
    total: int,
    tables: dict[str, SourceTable],
    max_bad_fraction: float,
) -> dict[str, Any]:
    by_role = {role: Counter(q.reason for q in s.quarantined) for role, s in sources.items()}
    overall: Counter[Reason] = sum(by_role.values(), Counter())
    input_rows = sum(t.n_rows for t in tables.values())
    return {
        "path": QUARANTINE_FILE,
        "rows": total,
        "input_rows": input_rows,
        "bad_fraction": total / input_rows if input_rows else 0.0,
        "max_bad_fraction": max_bad_fraction,
        "counts": {str(r): overall.get(r, 0) for r in Reason},
        "counts_by_source": {role: {str(r): n for r, n in sorted(c.items())} for role, c in sorted(by_role.items())},
        "row_numbering": "row: 1-based data record in its file, header excluded; line: 1-based physical line",
    }


def _enforce_threshold(src: _Source, quarantine: dict[str, Any], quarantine_uri: str) -> None:
    input_rows = quarantine["input_rows"]
    if input_rows == 0:
        raise DataValidationError(f"{src.train_uri}: no data rows to prepare (the file is empty or header-only).")
    fraction, limit = quarantine["bad_fraction"], quarantine["max_bad_fraction"]
    if fraction > limit:
        counts = {r: n for r, n in quarantine["counts"].items() if n}
        per_reason = ", ".join(f"{r}={n}" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        raise DataValidationError(
            f"Data validation failed for {src.dataset!r}: {quarantine['rows']} of {input_rows} input rows "
            f"({fraction:.2%}) were quarantined, above data.max_bad_fraction={limit:.2%}. Quarantined per reason: "
            f"{per_reason}. Each row, with its file, row number, reason and original values, is listed in "
            f"{quarantine_uri}. Fix the source rows, or raise data.max_bad_fraction to accept them being dropped."
            + (_NON_UTF8_HINT if counts.get(str(Reason.NON_UTF8)) else ""),
            counts=counts,
            bad_fraction=fraction,
            max_bad_fraction=limit,
            quarantine_uri=quarantine_uri,
        )


def _assign_splits(
    sources: dict[str, ValidatedSource], *, salt: str, val_fraction: float, test_fraction: float
) -> dict[str, list[ValidRow]]:
    rows: dict[str, list[ValidRow]] = {s: [] for s in SPLITS}
    for r in sources["train"].rows:
        rows[assign_split(r.text, salt=salt, val_fraction=val_fraction, test_fraction=test_fraction)].append(r)
    if "test" in sources:
        rows["test"] = list(sources["test"].rows)
    return rows


def _split_frame(rows: list[ValidRow], label_map: dict[str, int], schema: DataSchema) -> pd.DataFrame:
    # Rows are stored in row-id order, so the files (not only the content hash) ignore input order.
    ordered = sorted(((row_id(r.text), r) for r in rows), key=lambda pair: pair[0])
    data: dict[str, Any] = {
        "row_id": [rid for rid, _ in ordered],
        "text": [r.text for _, r in ordered],
        "label": pd.array([label_map[r.label] for _, r in ordered], dtype="int64"),
        "label_name": [r.label for _, r in ordered],
    }
    for i, column in enumerate(schema.feature_columns):
        data[column] = pd.array([r.features[i] for _, r in ordered], dtype="float64")
    return pd.DataFrame(data)


def _check_result(src: _Source, frames: dict[str, pd.DataFrame]) -> None:
    if frames["train"].empty:
        raise DataValidationError(
            f"{src.train_uri}: no valid training rows are left after validation and splitting; see the quarantine "
            "file for why rows were set aside."
        )
    ids = pd.concat([f["row_id"] for f in frames.values()])
    if ids.duplicated().any():  # a 64-bit id collision between two different texts: astronomically unlikely
        raise DataValidationError(f"row_id collision among {ids[ids.duplicated()].tolist()}; report this as a bug.")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _created_by() -> str:
    try:
        return f"matta {metadata.version('matta')}"
    except metadata.PackageNotFoundError:
        return "matta (version unknown: not installed)"
