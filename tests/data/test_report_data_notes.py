"""The report's header shows what the numbers rest on: quarantined rows per reason and every data and training
warning. A tiny real run (prepare -> train -> extract -> evaluate -> report, no Teacher) on a Banking77 sample with
a latin-1 row, too few rows per label and a batch larger than the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matta_core.artifacts.layout import TRAIN_RESULT
from matta_core.config import DataSection, ModelSection, TrainSection
from matta_core.families.classifier.evaluate_step import evaluate_step
from matta_core.families.classifier.extract_step import extract_step
from matta_core.families.classifier.prepare_step import prepare_step
from matta_core.families.classifier.train_step import train_step
from matta_core.steps import tracked
from tests.data.helpers import banking_rows, write_csv

MODEL = ModelSection(hidden_widths=[32], student_widths=[8], embed_dim=8, num_buckets=2**10)


def test_report_header_shows_quarantine_per_reason_and_every_warning(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault_record
) -> None:
    path = write_csv(tmp_path / "intents.csv", banking_rows()[::40][:250])
    path.write_bytes(path.read_bytes() + b"I paid in a caf\xe9,card_payment_fee_charged\r\n")
    data = DataSection(source=str(path))
    prepared, trained = str(tmp_path / "prepared"), str(tmp_path / "trained")
    manifest = prepare_step(data, prepared)
    train_rows = manifest.row_counts["train"]
    train = TrainSection(epochs=2, batch_size=512, baselines=[], num_threads=1)
    train_step(prepared, None, trained, MODEL, train, data, progress=False)
    batch_line = (
        f"train.batch_size=512 is larger than the {train_rows} training rows: one optimizer step covers "
        f"{512 / train_rows:.1f} epochs, so train.epochs=2 gives 1 optimizer step in all ({train_rows / 512:.2f} "
        f"per epoch). Set train.batch_size to at most {train_rows}, or give train.steps."
    )
    assert f"warning: {batch_line}" in capsys.readouterr().err.splitlines()
    result = json.loads((Path(trained) / TRAIN_RESULT).read_text())
    assert result["arms"]["matta"]["steps"] == 1
    assert result["warnings"][0]["code"] == "batch_size_exceeds_rows" and result["warnings"][0]["steps"] == 1

    extract_step(trained, [8], str(tmp_path / "model"), prepared, data)
    evaluate_step(str(tmp_path / "model"), prepared, str(tmp_path / "evaluation"), data, measure_speed=False)
    out = tmp_path / "report"
    report = tracked.report([str(tmp_path / "evaluation")], None, str(out), tracked.Tracking(),
                            prepared_dir=prepared, trained_dir=trained)

    quarantine = (
        f"quarantined 1 of 251 input rows (0.40%; data.max_bad_fraction 5.00%): non_utf8=1; listed in "
        f"{prepared}/quarantine.jsonl"
    )
    markdown = (out / "report.md").read_text()
    header = markdown.split("| model |")[0]
    assert f"; {quarantine}." in header
    assert "**Warnings** (3):" in header
    for warning in [*manifest.warnings, result["warnings"][0]]:
        assert f"- {warning['message']}\n" in header
    assert {w["code"] for w in manifest.warnings} == {"rare_labels", "too_many_labels"}
    page = (out / "report.html").read_text()
    assert "quarantined 1 of 251 input rows" in page.split("<table")[0] and "<b>Warnings</b> (3)" in page
    assert report["data"]["quarantine_counts"] == {"non_utf8": 1}
    assert [w["code"] for w in report["data"]["warnings"]] == ["rare_labels", "too_many_labels",
                                                               "batch_size_exceeds_rows"]
    assert json.loads((out / "report.json").read_text())["data"] == report["data"]
    fault_record("Batch larger than the training split", fault=f"train.batch_size=512 on {train_rows} training rows",
                 sees=f"warning: {batch_line}", kept="the run goes on (one optimizer step); the warning is printed "
                 "by the train step and listed in the report's header")


def test_report_without_the_data_folders_has_no_data_notes(tmp_path: Path) -> None:
    # `matta component report` without --prepared/--trained: the report is as before, with an empty data record.
    path = write_csv(tmp_path / "intents.csv", banking_rows()[::10][:400])
    data = DataSection(source=str(path))
    prepared, trained = str(tmp_path / "prepared"), str(tmp_path / "trained")
    prepare_step(data, prepared)
    train_step(prepared, None, trained, MODEL, TrainSection(steps=2, baselines=[], num_threads=1), data,
               progress=False)
    extract_step(trained, [8], str(tmp_path / "model"), prepared, data)
    evaluate_step(str(tmp_path / "model"), prepared, str(tmp_path / "evaluation"), data, measure_speed=False)
    report = tracked.report([str(tmp_path / "evaluation")], None, str(tmp_path / "report"), tracked.Tracking())
    assert report["data"] == {}
    assert (tmp_path / "report" / "report.md").read_text().startswith("# MatTA run report\n\n| model |")


def test_a_step_budget_with_a_batch_larger_than_the_data_warns_too() -> None:
    config = TrainSection(steps=10, batch_size=64, baselines=[]).train_config()
    warning = config.batch_size_warning(20)
    assert warning is not None and warning["message"] == (
        "train.batch_size=64 is larger than the 20 training rows: each of the 10 optimizer steps repeats rows "
        "(3.2 epochs per step). Set train.batch_size to at most 20."
    )
    assert config.batch_size_warning(64) is None  # a batch of exactly all rows is an ordinary full-batch run
