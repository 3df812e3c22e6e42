"""`benchmarks/quality.py --quick` runs end to end as a script and writes results of the documented shape.

The numbers of a quick run (a data subset, 3 epochs) say nothing about the method; only the structure is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mirror import MIRROR_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "quality.py"
RUN_KEYS = {"arm", "width", "params", "dense_params", "seed", "test_accuracy", "val_accuracy", "train_seconds",
            "train_flops", "run_id", "regime", "teacher", "optimizer"}
ARMS = {"ce_only", "kd", "matta", "matta_separate", "ce_only+shampoo", "matta+shampoo"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quality")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--mirror-dir", str(MIRROR_DIR)],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_quick_run_writes_json_markdown_and_chart(results: Path) -> None:
    report = json.loads((results / "quality_banking77.json").read_text())
    runs = report["runs"]
    assert runs and all(set(r) >= RUN_KEYS for r in runs)
    assert {r["arm"] for r in runs} == ARMS
    seeds = set(report["settings"]["seeds"])
    assert len(seeds) >= 2 and {r["seed"] for r in runs} == seeds
    for r in runs:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["train_seconds"] > 0 and r["params"] > r["dense_params"] > 0
    widths = set(report["settings"]["regimes"][0]["widths"])
    # One MatTA run yields every width: its records share one run_id and one training time.
    for seed in seeds:
        matta = [r for r in runs if r["arm"] == "matta" and r["seed"] == seed]
        assert {r["width"] for r in matta} == widths
        assert len({r["run_id"] for r in matta}) == 1 and len({r["train_seconds"] for r in matta}) == 1
        kd = [r for r in runs if r["arm"] == "kd" and r["seed"] == seed]
        assert len({r["run_id"] for r in kd}) == len(widths)  # per-width arms: one run per width
    # Equal budget: every run took the same steps at the same batch size.
    assert len({(r["steps"], r["batch_size"]) for r in runs}) == 1

    summary = {(row["arm"], row["width"]): row for row in report["summary"] if row["regime"] == "main"}
    assert set(summary) == {(arm, w) for arm in ARMS for w in widths}
    row = summary[("matta", max(widths))]
    for key in ("test_accuracy_mean", "test_accuracy_std", "rel_error_reduction_vs_ce_only",
                "rel_error_reduction_vs_kd", "teacher_gap_closed", "n"):
        assert key in row, key
    assert {"minilm", "ensemble", "tfidf_lr", "stronger_on_validation"} <= set(report["teachers"])
    assert set(report["arm_costs"]["main"]) == ARMS
    assert {"tfidf_lr", *(f"student-{w}" for w in widths)} <= set(report["throughput"]["examples_per_s"])
    assert set(report["super_additivity"]) == {str(w) for w in widths}
    assert len(report["goals"]) == 5 and all("met" in g for g in report["goals"].values())

    markdown = (results / "quality_banking77.md").read_text()
    assert "| regime | arm | width |" in markdown and "matta+shampoo" in markdown
    assert (results / "quality_banking77.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_cli_command_finds_and_describes_the_benchmark() -> None:
    from typer.testing import CliRunner

    from matta_core.cli import app
    from matta_core.cli.benchmark_cmds import load_benchmark

    result = CliRunner().invoke(app, ["benchmark", "quality", "--help"])
    assert result.exit_code == 0, result.output
    assert "--quick" in result.output and "--mirror-dir" in result.output
    assert callable(load_benchmark("quality").main)
