"""The checkov binary of the scan venv (.venv-scan, made by scripts/setup.sh: checkov's pins conflict with the
project's, so it is not in .venv) and one way to run it offline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.infra.render import REPO

CHECKOV = REPO / ".venv-scan" / "bin" / "checkov"


def checkov_binary() -> Path:
    """The checkov executable; fails in CI (CI=true) and skips elsewhere when scripts/setup.sh has not made it."""
    if not CHECKOV.exists():
        message = f"{CHECKOV} is missing: run scripts/setup.sh (it installs checkov into .venv-scan)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHECKOV


def scan(target: Path, framework: str) -> dict:
    """checkov's JSON report for a file or folder; --skip-download keeps it offline (no Prisma Cloud calls)."""
    flag = "-d" if target.is_dir() else "-f"
    done = subprocess.run(
        [str(checkov_binary()), flag, str(target), "--framework", framework, "--output", "json", "--quiet",
         "--compact", "--skip-download", "--soft-fail"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    # One framework gives one report (a dict); nothing to scan gives an empty summary.
    assert isinstance(report, dict), report
    return report


def failures(report: dict) -> list[str]:
    """'CHECK resource (file)' for every failed check of a report."""
    return [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
            for c in report.get("results", {}).get("failed_checks", [])]


def skips(report: dict) -> list[tuple[str, str]]:
    """(check id, the justification written beside the skip) for every skipped check of a report."""
    return [(c["check_id"], (c.get("check_result") or {}).get("suppress_comment", ""))
            for c in report.get("results", {}).get("skipped_checks", [])]
