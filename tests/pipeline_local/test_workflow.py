"""The whole flow as plain functions on a real Banking77 subset with the real MiniLM Teacher."""

from __future__ import annotations

import json

import pytest
import torch

from matta_core.config import PipelineConfig
from matta_core.families.classifier.extract import load_extracted
from matta_core.families.classifier.inputs import load_inputs
from matta_core.features import HashedNgramFeaturizer
from matta_core.workflow import run_local
from tests.mirror import MIRROR_DIR


def small_config(tmp_path, **overrides) -> PipelineConfig:
    data = {
        "data": {"mirror_dir": str(MIRROR_DIR), "limit_train_rows": 1200, "limit_test_rows": 400},
        "model": {"hidden_widths": [256], "student_widths": [32], "num_buckets": 2**16, "embed_dim": 64},
        # lr 1e-2: ~40 steps is a plumbing run; the library's 3e-3 is tuned for full (15-epoch) runs and learns
        # too slowly here for the narrowest width to clear the accuracy floor below.
        "train": {"epochs": 4, "num_threads": 1, "lr": 1e-2},
        "widths": [[256], [96], [32], [12]],
        "output_dir": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "cache"),
        "measure_speed": False,
    }
    data.update(overrides)
    return PipelineConfig.parse(data)


@pytest.mark.slow
def test_local_run_end_to_end_and_warm_rerun(tmp_path):
    config = small_config(tmp_path)
    run = run_local(config, progress=False)
    models = {r["name"]: r for r in run.report["models"]}
    assert set(models) == {"ta-256", "96", "student-32", "12", "kd-32", "ce_only-32"}
    chance = 1 / 77
    for record in models.values():
        assert record["accuracy"] > 10 * chance, record
    assert (run.output_dir / "report" / "pareto.png").stat().st_size > 1000
    assert "| ta-256" in run.report_path.read_text()

    # Every extracted model loads standalone and reproduces its evaluated accuracy.
    inputs = load_inputs(str(run.output_dir / "prepared"), config.data)
    test = inputs.splits["test"]
    for name in ("256", "32"):
        model, meta = load_extracted(run.output_dir / "models" / name)
        assert meta.metadata["parity_max_abs_diff"] <= 1e-5
        features = HashedNgramFeaturizer(meta.features).transform(test.texts)
        batch = features.batch(torch.arange(len(features)))
        with torch.inference_mode():
            predicted = model(batch.ids, batch.offsets, batch.counts).argmax(1).numpy()
        evaluated = json.loads((run.output_dir / "evaluations" / name / "evaluation.json").read_text())
        assert (predicted == test.labels).mean() == pytest.approx(evaluated["accuracy"])

    # A second run over the same data and Teacher reads every split's Teacher outputs from the cache.
    teacher = json.loads((run.output_dir / "teacher" / "teacher.json").read_text())
    assert all(s["cache"]["misses"] > 0 for s in teacher["splits"].values())
    rerun = small_config(tmp_path, output_dir=str(tmp_path / "run2"))
    run_local(rerun, progress=False)
    again = json.loads((tmp_path / "run2" / "teacher" / "teacher.json").read_text())
    assert again["fingerprint"] == teacher["fingerprint"]
    assert all(s["cache"]["pure_hit"] for s in again["splits"].values())
