"""Deterministic splits and the content hash: stable across runs and row order, sensitive to real changes; the
prepared folder round-trips locally and on gs://."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from matta_core import storage
from matta_core.data import DEFAULT_SALT, IncompletePreparedDataError, load_prepared, prepare_dataset, row_id
from matta_core.data.split import assign_split
from tests.data.helpers import banking_rows, write_csv

N_ROWS = 400


@pytest.fixture
def rows() -> list[dict[str, str]]:
    """400 real, distinct Banking77 rows over all intents."""
    return banking_rows()[::25][:N_ROWS]


def split_ids(out: Path) -> dict[str, list[str]]:
    return {name: frame["row_id"].tolist() for name, frame in load_prepared(str(out)).splits.items()}


def test_split_and_row_id_are_pinned() -> None:
    # Golden values: if these change, every downstream cache key and every split changes with them.
    assert row_id("I am still waiting on my card?") == "c78e5c591dab786f"
    assert row_id("  I am still\n waiting on my   card? ") == "c78e5c591dab786f"
    assert assign_split("I am still waiting on my card?", salt=DEFAULT_SALT, val_fraction=0.1) == "train"
    assert assign_split("I am still waiting on my card?", salt=DEFAULT_SALT, val_fraction=0.1, test_fraction=0.1) == (
        "validation"
    )
    assert assign_split("How do I top up my card?", salt=DEFAULT_SALT, val_fraction=0.1, test_fraction=0.1) == "train"


def test_same_input_twice_gives_same_hash_and_files(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    path = write_csv(tmp_path / "in.csv", rows)
    first = prepare_dataset(str(path), str(tmp_path / "a"))
    second = prepare_dataset(str(path), str(tmp_path / "b"))
    assert first.content_hash == second.content_hash
    assert first.files == second.files  # same library versions: even the Parquet bytes agree
    assert sum(first.row_counts.values()) == N_ROWS
    assert all(first.row_counts[s] > 0 for s in ("train", "validation", "test"))


def test_shuffled_rows_give_same_splits_and_hash(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    a = prepare_dataset(str(write_csv(tmp_path / "a.csv", rows)), str(tmp_path / "a"))
    b = prepare_dataset(str(write_csv(tmp_path / "b.csv", shuffled)), str(tmp_path / "b"))
    assert a.content_hash == b.content_hash
    assert split_ids(tmp_path / "a") == split_ids(tmp_path / "b")


def test_a_grown_data_drop_keeps_old_rows_in_their_splits(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    prepare_dataset(str(write_csv(tmp_path / "s.csv", rows[:200])), str(tmp_path / "s"))
    prepare_dataset(str(write_csv(tmp_path / "l.csv", rows)), str(tmp_path / "l"))
    before, after = split_ids(tmp_path / "s"), split_ids(tmp_path / "l")
    for name in before:
        assert set(before[name]) <= set(after[name])


def test_one_changed_label_changes_the_hash(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    changed = [dict(r) for r in rows]
    changed[17]["label"] = "card_arrival" if changed[17]["label"] != "card_arrival" else "card_linking"
    a = prepare_dataset(str(write_csv(tmp_path / "a.csv", rows)), str(tmp_path / "a"))
    b = prepare_dataset(str(write_csv(tmp_path / "b.csv", changed)), str(tmp_path / "b"))
    assert a.content_hash != b.content_hash
    assert a.row_counts == b.row_counts


def test_salt_moves_rows_between_splits(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    path = str(write_csv(tmp_path / "in.csv", rows))
    a = prepare_dataset(path, str(tmp_path / "a"))
    b = prepare_dataset(path, str(tmp_path / "b"), salt="another-salt")
    assert b.split["salt"] == "another-salt"
    assert a.content_hash != b.content_hash
    assert split_ids(tmp_path / "a")["validation"] != split_ids(tmp_path / "b")["validation"]


def test_output_files_columns_and_manifest(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    out = tmp_path / "out"
    manifest = prepare_dataset(str(write_csv(tmp_path / "in.csv", rows)), str(out), name="intents")
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["content_hash"] == manifest.content_hash
    assert on_disk["dataset"] == "intents"
    assert (
        on_disk["source"]["files"]["train"]["sha256"] == hashlib.sha256((tmp_path / "in.csv").read_bytes()).hexdigest()
    )
    assert on_disk["created_by"].startswith("matta ")
    assert list(manifest.label_map) == sorted(manifest.label_map)
    assert list(manifest.label_map.values()) == list(range(len(manifest.label_map)))
    prepared = load_prepared(str(out))
    for name, frame in prepared.splits.items():
        assert list(frame.columns) == ["row_id", "text", "label", "label_name"], name
        assert frame["row_id"].is_monotonic_increasing
        assert (frame["label"] == frame["label_name"].map(manifest.label_map)).all()
        assert frame["row_id"].tolist() == [row_id(t) for t in frame["text"]]
    report = manifest.imbalance
    assert report["split"] == "train" and report["min_count"] <= report["max_count"]
    assert set(report["counts"]) == set(manifest.label_map)
    assert report["rare_labels"] == sorted(n for n, c in report["counts"].items() if c < 5)  # min_rows_per_label


def test_load_prepared_detects_a_changed_file(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    out = tmp_path / "out"
    prepare_dataset(str(write_csv(tmp_path / "in.csv", rows)), str(out))
    frame = pd.read_parquet(out / "validation.parquet")
    frame.loc[0, "label"] = (frame.loc[0, "label"] + 1) % 77
    frame.to_parquet(out / "validation.parquet", index=False)
    with pytest.raises(IncompletePreparedDataError, match=r"validation.parquet does not match manifest.json"):
        load_prepared(str(out))


def test_prepare_to_gcs_matches_local(bucket: str, tmp_path: Path, rows: list[dict[str, str]]) -> None:
    path = write_csv(tmp_path / "in.csv", rows)
    source = storage.join(bucket, "raw", "in.csv")
    storage.upload_file(path, source)
    out = storage.join(bucket, "prepared", "intents")
    remote = prepare_dataset(source, out)
    local = prepare_dataset(str(path), str(tmp_path / "out"))
    assert remote.content_hash == local.content_hash
    assert remote.source["files"]["train"]["uri"] == source
    assert storage.list_uris(out) == [
        storage.join(out, name)
        for name in ("manifest.json", "quarantine.jsonl", "test.parquet", "train.parquet", "validation.parquet")
    ]
    prepared = load_prepared(out)
    assert prepared.content_hash == local.content_hash
    assert len(prepared.train) == local.row_counts["train"]
