"""Bad data fails the prepare task with matta's message alone (the file, what is wrong, the config key to set)
and a non-zero exit; ``MATTA_DEBUG=1`` brings the traceback back.

The component's own function runs in a fresh process, as KFP runs a task (kfp.local prints whatever the task
prints), so what is checked is exactly what a user reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from matta_core.task_errors import exit_on_expected_errors
from tests.data.helpers import banking_rows, write_csv

REPO = Path(__file__).resolve().parents[2]
# The prepare component's function with the artifacts KFP would hand it; tracking off.
TASK = """
import sys
from kfp.dsl import Dataset, Metrics
from components.prepare import prepare_data
prepare_data.python_func(task="classification", data_json=sys.argv[1], data_version="v1", code_version="",
                         tracking_uri="", parent_run_id="", experiment="", prepared=Dataset(uri=sys.argv[2]),
                         metrics=Metrics(uri=sys.argv[3]))
"""


def run_task(tmp_path: Path, data: dict[str, str], debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MATTA_DEBUG", "MLFLOW_TRACKING_URI")}
    if debug:
        env["MATTA_DEBUG"] = "1"
    command = [sys.executable, "-c", TASK, json.dumps(data), str(tmp_path / "prepared"), str(tmp_path / "metrics")]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_an_empty_file_fails_the_task_with_one_message_and_no_traceback(  # type: ignore[no-untyped-def]
    tmp_path: Path, fault_record
) -> None:
    empty = tmp_path / "intents.csv"
    empty.write_bytes(b"")
    done = run_task(tmp_path, {"source": str(empty)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    line = (
        f"matta prepare: error: {empty}: the file is empty (no header, no data rows); expected a header row naming "
        "the columns ('text', 'label'), then one row per example."
    )
    assert line in done.stderr.splitlines()
    assert "(set MATTA_DEBUG=1 for the traceback)" in done.stderr

    debug = run_task(tmp_path, {"source": str(empty)}, debug=True)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr and "EmptyFileError" in debug.stderr
    fault_record("An empty data file", fault="data.source names a 0-byte file", sees=line,
                 kept="nothing written; the prepare task exits 1 with this one message, no traceback "
                 "(MATTA_DEBUG=1 brings it back)")


def test_a_missing_column_names_the_config_key(tmp_path: Path) -> None:
    rows = [{"utterance": r["text"], "label": r["label"]} for r in banking_rows()[:20]]
    path = write_csv(tmp_path / "intents.csv", rows, columns=("utterance", "label"))
    done = run_task(tmp_path, {"source": str(path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        f"matta prepare: error: {path}: missing column(s) 'text' required by the schema; columns found: 'utterance', "
        "'label'. In the config, set data.text_column to the column that holds the texts (here probably "
        "data.text_column: utterance)."
    ) in done.stderr.splitlines()


def test_other_errors_keep_their_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    # Only the expected kinds are shortened: a bug must still show where it is.
    with pytest.raises(KeyError), exit_on_expected_errors("prepare", ValueError):
        raise KeyError("a bug")
    with pytest.raises(SystemExit) as exit_info, exit_on_expected_errors("prepare", ValueError):
        raise ValueError("bad input")
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.splitlines()[0] == "matta prepare: error: bad input"
