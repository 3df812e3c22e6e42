"""Labels that make a run's numbers meaningless are never silent: test labels no training row has (an error by
default, or quarantined, or kept with a warning), labels with too few rows, and more labels than the data supports.

Driven through `prepare_step` on real Banking77 rows (and, for the many-labels case, a realistic generated file);
the user-visible results are checked: the error, the console, the manifest."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from matta_core.config import DataSection
from matta_core.data import UnseenTestLabelsError, load_prepared
from matta_core.families.classifier.prepare_step import prepare_step
from tests.data.helpers import MIRROR, banking_rows, read_quarantine, write_csv

TRAIN_LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card")
UNSEEN = ("top_up_failed", "pin_blocked")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A training file over 3 intents (30 rows each) and a test file of 30 rows, a third of them (6 + 4) with
    intents that the training file lacks."""
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in banking_rows():
        by_label[r["label"]].append(r)
    train = [r for label in TRAIN_LABELS for r in by_label[label][:30]]
    test = [r for label in TRAIN_LABELS for r in by_label[label][30:37]][:20]
    test += by_label[UNSEEN[0]][:6] + by_label[UNSEEN[1]][:4]
    return write_csv(tmp_path / "train.csv", train), write_csv(tmp_path / "test.csv", test)


def test_unseen_test_labels_are_an_error_naming_labels_counts_and_file(  # type: ignore[no-untyped-def]
    tmp_path: Path, files: tuple[Path, Path], fault_record
) -> None:
    train, test = files
    out = tmp_path / "prepared"
    with pytest.raises(UnseenTestLabelsError) as err:
        prepare_step(DataSection(source=str(train), test_source=str(test)), str(out))
    assert str(err.value).startswith(
        f"{test}: 10 of 30 test rows (33.3%) carry 2 label(s) that no training row has: 'top_up_failed' (6), "
        "'pin_blocked' (4). A model cannot predict a label it never saw"
    )
    assert "set data.unseen_test_labels to drop (quarantine these rows) or keep" in str(err.value)
    assert err.value.labels == {"top_up_failed": 6, "pin_blocked": 4} and err.value.file == str(test)
    assert not (out / "manifest.json").exists()  # the folder reads as unfinished
    fault_record("Test labels absent from training", fault="a third of the test rows carry 2 intents no training "
                 "row has", sees=str(err.value), kept="nothing prepared (no manifest: the folder reads as "
                 "unfinished); data.unseen_test_labels: drop or keep runs on, saying so")


def test_unseen_test_labels_dropped_are_quarantined_and_printed(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = files
    out = tmp_path / "prepared"
    data = DataSection(source=str(train), test_source=str(test), unseen_test_labels="drop", max_bad_fraction=0.1)
    manifest = prepare_step(data, str(out))

    assert manifest.row_counts["test"] == 20
    assert set(load_prepared(str(out)).test["label_name"]) == set(TRAIN_LABELS)
    records = read_quarantine(out)
    assert {(r["file"], r["reason"], r["values"]["label"]) for r in records} == {
        (str(test), "unseen_test_label", "top_up_failed"), (str(test), "unseen_test_label", "pin_blocked")
    }
    assert len(records) == 10
    console = capsys.readouterr()
    assert "quarantined 10 of 120 input rows (8.33%; data.max_bad_fraction 10.00%): unseen_test_label=10" in console.out
    assert (
        f"warning: {test}: 10 of 30 test rows (33.3%) carry 2 label(s) that no training row has: 'top_up_failed' "
        "(6), 'pin_blocked' (4). They were quarantined as unseen_test_label (data.unseen_test_labels: drop)."
    ) in console.err.splitlines()


def test_unseen_test_labels_kept_are_evaluated_with_a_warning(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = files
    out = tmp_path / "prepared"
    manifest = prepare_step(DataSection(source=str(train), test_source=str(test), unseen_test_labels="keep"), str(out))
    assert manifest.row_counts["test"] == 30
    [warning] = [w for w in manifest.warnings if w["code"] == "unseen_test_labels"]
    assert (warning["action"], warning["rows"], warning["labels"]) == ("keep", 10, {"pin_blocked": 4,
                                                                                     "top_up_failed": 6})
    assert "They are evaluated anyway and always count as errors (data.unseen_test_labels: keep)" in (
        capsys.readouterr().err
    )


def test_two_thousand_labels_of_two_rows_warn_with_the_numbers(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault_record
) -> None:
    # A support-ticket export where every ticket got its own category: 2,000 labels, 2 rows each.
    rows = [{"text": f"ticket {i:04d}-{j}: my order {i * 7 + j} has not arrived", "label": f"case_{i:04d}"}
            for i in range(2000) for j in range(2)]
    out = tmp_path / "prepared"
    manifest = prepare_step(DataSection(source=str(write_csv(tmp_path / "tickets.csv", rows))), str(out))

    train_rows = manifest.row_counts["train"]
    warnings = {w["code"]: w for w in manifest.warnings}
    assert set(warnings) == {"rare_labels", "too_many_labels", "unseen_test_labels"}
    err = capsys.readouterr().err.splitlines()
    too_many = (
        f"warning: 2,000 labels for {train_rows:,} training rows: {train_rows / 2000:.1f} rows per label on average, "
        "below data.min_rows_per_label=5. That is more labels than this data can teach a model; expect accuracy "
        "near chance. Merge labels or add rows."
    )
    assert too_many in err
    rare = next(line for line in err if "training rows (data.min_rows_per_label)" in line)
    assert rare.startswith("warning: 2000 of 2000 labels have fewer than 5 training rows (data.min_rows_per_label): ")
    assert "... (1992 more)" in rare
    # Drawn from the same file by hash, some test rows land on labels left with no training row: said, not fatal.
    unseen = warnings["unseen_test_labels"]
    assert unseen["action"] == "keep" and unseen["rows"] > 0
    assert "the test split (drawn from the training file)" in unseen["message"]
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["warnings"] == manifest.warnings
    fault_record("2,000 labels with 2 rows each", fault="a ticket export where every ticket got its own category",
                 sees=too_many, kept="the run goes on; the warnings are printed and kept in the manifest and the "
                 "report's header")


def test_min_rows_per_label_is_configurable(tmp_path: Path, files: tuple[Path, Path]) -> None:
    train, test = files
    data = DataSection(source=str(train), test_source=str(test), unseen_test_labels="keep", min_rows_per_label=40)
    manifest = prepare_step(data, str(tmp_path / "prepared"))
    rare = next(w for w in manifest.warnings if w["code"] == "rare_labels")
    # 27-28 training rows each (the rest went to validation), and the kept unseen test labels with none.
    assert rare["labels"] == {**manifest.label_counts["train"], **dict.fromkeys(UNSEEN, 0)}
    assert rare["min_rows_per_label"] == 40
    assert manifest.imbalance["rare_labels"] == sorted(TRAIN_LABELS + UNSEEN)


def test_banking77_prints_its_quarantine_and_no_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prepared"
    manifest = prepare_step(DataSection(source="banking77", mirror_dir=str(MIRROR)), str(out))
    console = capsys.readouterr()
    assert console.out.splitlines() == [
        f"prepared banking77: 8,983 train / 1,009 validation / 3,079 test rows, 77 labels, content hash "
        f"{manifest.content_hash[:12]}",
        "quarantined 12 of 13,083 input rows (0.09%; data.max_bad_fraction 5.00%): leaks_into_test=7, duplicate=5; "
        f"listed in {out}/quarantine.jsonl",
    ]
    assert console.err == "" and manifest.warnings == []
