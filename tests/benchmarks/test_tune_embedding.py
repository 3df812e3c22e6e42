"""The "embedding" round of `benchmarks/tune_matta.py` and the nested-embedding fields of `benchmarks/quality.py`:
candidates build valid configs, the defaults stay un-nested, and the scores read the right widths and bytes."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))  # benchmarks/ is not a package
import quality  # noqa: E402
import tune_matta  # noqa: E402


def test_regime_defaults_do_not_nest_the_embedding() -> None:
    config = quality.model_config(quality.FULL.regimes[0], 32)
    assert config.student_embed_dim is None and config.min_embed_dim == 8
    assert {config.embed_dim_for((w,)) for w in (32, 512, 1024)} == {128}


def test_candidates_build_in_the_time_box_order_with_the_dims_they_name() -> None:
    assert list(tune_matta.EMBEDDING) == ["baseline", "student_embed_dim=32", "embed_dim=256,student_embed_dim=32",
                                          "student_embed_dim=48", "student_embed_dim=32,min_embed_dim=16"]
    dims = {}
    for name, fields in tune_matta.EMBEDDING.items():
        config = quality.model_config(replace(tune_matta.EMBED_REGIME, **fields), tune_matta.EMBED_STUDENT)
        dims[name] = {w: config.embed_dim_for((w,)) for w in tune_matta.EMBED_WIDTHS}
    assert dims["student_embed_dim=32"][64] == 32 and dims["student_embed_dim=48"][64] == 48
    assert dims["embed_dim=256,student_embed_dim=32"][1024] == 256 and dims["baseline"][32] == 128
    assert dims["student_embed_dim=32,min_embed_dim=16"][32] == 16


def test_compact_table_bytes_counts_values_and_per_row_overhead() -> None:
    assert quality.compact_table_bytes(1000, 16) == 1000 * 16 + 1000 * 12


def _record(name: str, seed: int, width: int, acc: float, dims: int) -> dict[str, Any]:
    return {"run_id": f"tune_embedding/matta/w64/seed{seed}/{name}", "seed": seed, "width": width,
            "val_accuracy": acc, "embed_dims": dims, "table_bytes_estimate": quality.compact_table_bytes(100, dims),
            "dense_params": width * 10, "train_seconds": 1.0}


def test_embedding_scores_report_student_narrowest_and_bytes() -> None:
    widths = tune_matta.EMBED_WIDTHS
    records = [_record("nested", seed, w, 0.5 + w / 10_000 + seed / 100, w // 8) for seed in (0, 1) for w in widths]
    scores = tune_matta.embedding_scores(records)["nested"]
    assert scores["seeds"] == [0, 1]
    assert scores["student_val_accuracy"] == scores["per_width"][64] == 0.5 + 64 / 10_000 + 0.005
    assert scores["narrowest_val_accuracy"] == scores["per_width"][32]
    assert scores["narrowest_table_bytes"] == 100 * (4 + 12) and scores["student_table_bytes"] == 100 * (8 + 12)
    assert scores["narrowest_over_ta_table_bytes"] == (4 + 12) / (128 + 12)
    assert scores["bytes_estimate_with_dense"][32] == 100 * 16 + 4 * 320
    # The objective averages the benchmark widths only (32..512), like the other rounds; the TA is reported apart.
    assert abs(scores["val_accuracy_mean_over_widths"]
               - (0.5 + sum(tune_matta.WIDTHS) / len(tune_matta.WIDTHS) / 10_000 + 0.005)) < 1e-12


def test_timebox_past_deadline_runs_nothing_and_lists_it() -> None:
    job = quality.Job(tune_matta.EMBED_REGIME, "matta", 64, 0, 1.0, {}, ("validation",), "baseline")
    records, not_run = tune_matta.run_timeboxed([job], None, 1, time.perf_counter() - 1)
    assert records == [] and not_run == [job.run_id]
