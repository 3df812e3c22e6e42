"""The prepare step's MLflow record shows what was quarantined, per reason, where it is listed, and every warning:
`tracked.prepare` (what the component runs) against a real sqlite store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from matta_core.config import DataSection
from matta_core.steps import tracked
from matta_core.tracking import pipeline_run
from tests.data.helpers import banking_rows, write_jsonl
from tests.mlflow_server import clean_mlflow_state  # noqa: F401  (autouse: no store or active run leaks out)


def test_prepare_logs_quarantine_per_reason_its_file_and_warnings(tmp_path: Path) -> None:
    rows = [r for r in banking_rows() if "\n" not in r["text"]][::50][:60]
    path = write_jsonl(tmp_path / "intents.jsonl", rows)
    # One latin-1 line and one line cut short: the defect was `rows_quarantined: 0` for exactly this.
    path.write_bytes(path.read_bytes() + b'{"text": "caf\xe9 payment", "label": "card_payment_fee_charged"}\n'
                     + b'{"text": "Where is my card?", "label": \n')
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "prepared"
    with pipeline_run(uri, "prepare-visibility", "run-1") as parent:
        metrics = tracked.prepare(DataSection(source=str(path)), str(out), tracked.Tracking(uri, parent.run_id))

    assert metrics["rows_quarantined"] == 2.0
    assert (metrics["quarantined_non_utf8"], metrics["quarantined_malformed_row"]) == (1.0, 1.0)
    assert metrics["quarantined_duplicate"] == 0.0 and metrics["data_warnings"] == 2.0  # rare + too many labels
    client = mlflow.MlflowClient(uri)
    [child] = client.search_runs([parent.experiment_id], f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert child.info.run_name == "prepare"
    logged = child.data.metrics
    assert (logged["rows_quarantined"], logged["quarantined_non_utf8"], logged["quarantined_malformed_row"]) == (
        2.0, 1.0, 1.0
    )
    assert logged["quarantined_control_chars"] == 0.0 and logged["data_warnings"] == 2.0
    params = child.data.params
    assert params["quarantine.file"] == f"{out}/quarantine.jsonl"
    assert params["quarantine.summary"] == (
        f"quarantined 2 of 62 input rows (3.23%; data.max_bad_fraction 5.00%): malformed_row=1, non_utf8=1; listed "
        f"in {out}/quarantine.jsonl"
    )
    assert params["warning.rare_labels"].startswith("23 of 23 labels have fewer than 5 training rows")
    assert params["warning.too_many_labels"].startswith("23 labels for 48 training rows: 2.1 rows per label")
    assert params["data.min_rows_per_label"] == "5" and params["data.unseen_test_labels"] == "error"


def test_data_section_keys_defaults_and_allowed_values() -> None:
    defaults = DataSection()
    assert (defaults.control_chars, defaults.unseen_test_labels, defaults.min_rows_per_label) == ("quarantine",
                                                                                                  "error", 5)
    with pytest.raises(ValueError, match=r"unseen_test_labels\n.*'error', 'drop' or 'keep'"):
        DataSection(unseen_test_labels="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"control_chars\n.*'quarantine' or 'clean'"):
        DataSection(control_chars="strip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"min_rows_per_label\n.*greater than or equal to 1"):
        DataSection(min_rows_per_label=0)
