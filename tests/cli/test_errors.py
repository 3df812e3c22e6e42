"""Errors of the `matta` command: a mistake the user can fix is ``error: <message>`` and exit 2, without a
traceback; ``--debug`` (or ``MATTA_DEBUG=1``) shows the traceback and passes MATTA_DEBUG=1 to child processes."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from matta_core.cli import app
from matta_core.config import ConfigError
from matta_core.data.errors import MissingColumnsError


def _matta(*args: str, debug_env: str | None = None) -> Result:
    # env: CliRunner restores these variables afterwards, including the MATTA_DEBUG that --debug sets.
    return CliRunner().invoke(app, list(args), env={"MATTA_DEBUG": debug_env})


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "tickets.csv"
    path.write_text("words,category\nmy card is lost,card_lost\n")
    return path


def _demo(bad_csv: Path) -> list[str]:
    return ["demo", "--set", f"data.source={bad_csv}", "--set", f"output_dir={bad_csv.parent / 'out'}"]


def test_a_data_error_is_one_line_and_exit_2(bad_csv: Path, fault_record) -> None:  # type: ignore[no-untyped-def]
    result = _matta(*_demo(bad_csv))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {bad_csv}: missing column(s) 'text', 'label' required by the schema; columns found: 'words', "
        "'category'. In the config, set data.text_column to the column that holds the texts; set "
        "data.label_column to the column that holds the labels.")
    fault_record("Data file without the expected columns", fault="`matta demo` on a CSV whose columns are "
                 "'words', 'category'", sees=result.output.strip(), kept="nothing written; one line naming the "
                 "config keys to set, exit 2, no traceback (--debug brings it back)")


@pytest.mark.parametrize(("flag", "env"), [(["--debug"], None), ([], "1")])
def test_debug_or_matta_debug_shows_the_traceback(bad_csv: Path, flag: list[str], env: str | None) -> None:
    result = _matta(*flag, *_demo(bad_csv), debug_env=env)
    assert isinstance(result.exception, MissingColumnsError)  # raised out of the command: Python prints it whole
    assert result.exit_code == 1 and "error:" not in result.output


def test_a_command_s_own_handler_honours_debug() -> None:
    plain = _matta("show-config", "--set", "train.epochs=-1")
    assert plain.exit_code == 2 and plain.output.startswith("error: config is invalid:\n  train.epochs: Input should")
    debug = _matta("--debug", "show-config", "--set", "train.epochs=-1")
    assert isinstance(debug.exception, ConfigError)


@pytest.mark.parametrize(("flag", "seen"), [(["--debug"], "1"), ([], "")])
def test_debug_reaches_the_processes_the_command_starts(tmp_path: Path, flag: list[str], seen: str) -> None:
    out = tmp_path / "seen.txt"
    child = f"import os, pathlib; pathlib.Path({str(out)!r}).write_text(os.environ.get('MATTA_DEBUG', ''))"
    result = _matta(*flag, "schedule", "--local", "--cron", "* * * * * *", "--max-runs", "1",
                    "--log", str(tmp_path / "runs.jsonl"), "--command", shlex.join([sys.executable, "-c", child]))
    assert result.exit_code == 0, result.output
    assert out.read_text() == seen
