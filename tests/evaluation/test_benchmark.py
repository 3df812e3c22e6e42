"""`benchmarks/train_step.py --quick` runs end to end as a script and writes JSON of the documented shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "train_step.py"

WIDTH_KEYS = {
    "name",
    "widths",
    "params",
    "embedding_params",
    "dense_params",
    "flops_per_example",
    "latency_p50_ms",
    "latency_p95_ms",
    "throughput_examples_per_s",
    "param_ratio_vs_ta",
    "dense_param_ratio_vs_ta",
    "flops_ratio_vs_ta",
    "latency_ratio_vs_ta",
    "throughput_ratio_vs_ta",
}


def write_tiny_dataset(directory: Path) -> None:
    """A few hundred short queries over 5 intents: enough rows for batch-128 steps and batch-256 throughput."""
    intents = {
        "card_arrival": "where is my new card it has not arrived",
        "top_up_failed": "my top up failed again today",
        "exchange_rate": "what exchange rate do you use for euros",
        "pin_blocked": "my pin is blocked after three tries",
        "refund": "how long does a refund take to show",
    }
    rows = [{"text": f"{text} {i}", "category": name} for name, text in intents.items() for i in range(60)]
    directory.mkdir()
    pd.DataFrame(rows).to_csv(directory / "train.csv", index=False)
    (directory / "categories.json").write_text(json.dumps(list(intents)))


@pytest.mark.slow
def test_quick_benchmark_writes_the_documented_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_tiny_dataset(data_dir)
    out = tmp_path / "results" / "train_step.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--data-dir", str(data_dir), "--out", str(out), "--threads", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "joint_over_ta_step_ratio" in result.stdout
    report = json.loads(out.read_text())

    assert {"date", "cpu_count", "torch", "torch_threads"} <= set(report["machine"])
    assert report["machine"]["torch_threads"] == 1
    assert report["args"]["num_classes"] == 5 and report["args"]["quick"] is True

    step = report["train_step"]
    assert set(step["arms_ms"]) == {"ta", "joint", "joint_k0"}
    for arm in step["arms_ms"].values():
        assert {"step_ms", "forward_ms", "backward_ms", "optimizer_ms", "forward_backward_ms"} <= set(arm)
    for key in (
        "joint_over_ta_step_ratio",
        "joint_over_ta_step_ratio_paired",
        "joint_k0_over_ta_step_ratio",
        "joint_over_ta_forward_backward_ratio",
    ):
        assert isinstance(step[key], float) and step[key] > 0
    assert step["sandwich_k"] == 2 and step["batch_size"] == 128 and "random" in step["teacher"]
    assert step["config"]["hidden_widths"] == [1024] and step["config"]["student_widths"] == [64]

    one_layer, two_layers = report["serving"]
    assert [w["widths"] for w in one_layer["widths"]] == [[1024], [512], [256], [128], [64], [32]]
    assert any(len(set(w["widths"])) > 1 for w in two_layers["widths"])  # Mix'n'Match measured
    for serving in (one_layer, two_layers):
        assert "latency_fixed_share_of_ta" in serving and "batch256_fixed_share_of_ta" in serving
        for width in serving["widths"]:
            assert set(width) >= WIDTH_KEYS, WIDTH_KEYS - set(width)
        assert serving["widths"][0]["name"].startswith("ta-")
        assert serving["widths"][0]["flops_ratio_vs_ta"] == 1.0
