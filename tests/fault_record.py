"""The README's "Faults survived" table comes from the tests that drive each fault (pytest plugin).

A fault test takes the `fault_record` fixture and calls it once with the case, what the user saw (a line the test
read from the real output and asserted on, with run-specific values such as paths and pids replaced) and what was
kept. When the test passes, its row goes to ``build/test-results/faults.json`` (``MATTA_TEST_RESULTS`` overrides
the folder) at the end of the session; ``python scripts/fault_table.py`` renders the table into the README. A failed
or skipped test adds no row (a skip adds its reason), so the table lists only what was seen to hold.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = "faults.json"
_rows: dict[str, dict[str, Any]] = {}
_pending: dict[str, dict[str, Any]] = {}

_VOLATILE = [
    (re.compile(r"/tmp/[^\s'\"`),:;]+"), "<path>"),
    (re.compile(r"\bpid \d+"), "pid <pid>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(,\d+)?( UTC|Z)?"), "<time>"),
    (re.compile(r"\blocal-[0-9a-f]{12}\b"), "<run>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<run id>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hash>"),
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://127.0.0.1:<port>"),
    (re.compile(re.escape(str(REPO_ROOT))), "<repo>"),
    (re.compile(rf"\bon {re.escape(socket.gethostname())}\b"), "on <host>"),
]


def results_dir() -> Path:
    return Path(os.environ.get("MATTA_TEST_RESULTS", REPO_ROOT / "build" / "test-results"))


def scrub(text: str) -> str:
    """`text` without what changes from run to run (temporary paths, pids, times, run ids, ports)."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


@pytest.fixture
def fault_record(request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    """``fault_record(case, fault=..., sees=..., kept=...)``: this test's row of the fault table."""

    def record(case: str, *, fault: str, sees: str, kept: str) -> None:
        _pending[request.node.nodeid] = {"case": case, "fault": fault, "sees": scrub(sees), "kept": kept,
                                         "test": request.node.nodeid}

    yield record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.passed and item.nodeid in _pending:
        _rows[item.nodeid] = _pending.pop(item.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _rows:
        return
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULTS_FILE
    # Merge with rows from earlier sessions (a partial rerun keeps the other cases' rows).
    previous = json.loads(path.read_text()) if path.is_file() else []
    merged = {row["test"]: row for row in previous} | _rows
    path.write_text(json.dumps(sorted(merged.values(), key=lambda r: r["case"]), indent=2) + "\n")
