"""The ``task: causal_lm`` steps as plain functions, through `tracked` (the components' entry point), on a tiny
text file and a tiny synthetic Teacher folder: prepare, train, extract, evaluate, report and the release's skip,
in seconds. The real SmolLM2 Teacher runs in tests/kfp/test_lm_pipeline.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from matta_core.artifacts.layout import CLOZE_TEST, TEACHER_INFO
from matta_core.config import ConfigError, PipelineConfig
from matta_core.data.errors import IncompletePreparedDataError
from matta_core.families.decoder.evaluate import perplexity
from matta_core.families.decoder.inputs import load_lm_inputs
from matta_core.families.decoder.model_io import load_nested_decoder
from matta_core.families.decoder.prepared import load_prepared_text
from matta_core.families.decoder.standalone import StandaloneDecoder
from matta_core.families.decoder.teacher_step import load_token_outputs, write_token_outputs
from matta_core.steps import tracked

VOCAB, LENGTH, K = 64, 12, 4
OFF = tracked.Tracking()  # no MLflow: the steps alone


@pytest.fixture
def config(tmp_path: Path) -> PipelineConfig:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(words, size=rng.integers(4, 9))) for _ in range(300)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([*lines, lines[0], ""]) + "\n")  # a duplicate and an empty line: quarantined
    return PipelineConfig.parse({
        "task": "causal_lm",
        "data": {"source": str(corpus), "limit_train_rows": 64, "limit_test_rows": 16},
        "teacher": {"spec": {"kind": "causal_lm", "model_path": str(tmp_path), "max_length": LENGTH, "k": K}},
        "model": {"d_model": 16, "n_layers": 2, "n_heads": 2, "ffn_widths": 32, "student_ffn_widths": 8,
                  "student_heads": 1},
        "train": {"steps": 6, "batch_size": 8, "num_threads": 1},
        "widths": ["ta", {"ffn": 16, "heads": 2}, "student"],
        "measure_speed": False,
    })


def test_prepare_writes_a_verified_corpus_folder(tmp_path: Path, config: PipelineConfig) -> None:
    metrics = tracked.prepare(config.data, str(tmp_path / "prepared"), OFF, "causal_lm")
    assert metrics["rows_duplicate"] == 1 and metrics["rows_quarantined"] == 2
    assert sum(metrics[f"rows_{s}"] for s in ("train", "validation", "test")) == 300
    inputs = load_lm_inputs(str(tmp_path / "prepared"), config.data)
    assert [len(inputs.splits[s].texts) for s in ("train", "validation", "test")] == [64, 16, 16]
    # A row limit is another data set (its own cache key), the full split keeps the content hash.
    assert inputs.splits["train"].data_hash != inputs.content_hash

    (tmp_path / "prepared" / "test.jsonl").write_text('{"row_id": "x", "text": "edited"}\n')
    with pytest.raises(IncompletePreparedDataError, match="do not hash to the manifest's content_hash"):
        load_prepared_text(str(tmp_path / "prepared"))


def test_train_extract_evaluate_report_and_release_skip(tmp_path: Path, config: PipelineConfig) -> None:
    prepared, teacher, trained = (str(tmp_path / name) for name in ("prepared", "teacher", "trained"))
    tracked.prepare(config.data, prepared, OFF, "causal_lm")
    _synthetic_teacher(prepared, teacher, config)

    metrics, baselines = tracked.train(prepared, teacher, trained, config.model, config.train, config.data, OFF,
                                       "causal_lm")
    assert baselines == ["baselines/kd", "baselines/ce_only"] and metrics["matta_steps"] == 6
    nested = load_nested_decoder(Path(trained) / "nested")
    assert nested.config.vocab_size == VOCAB and nested.config.n_positions == LENGTH

    evaluations = []
    for i, widths in enumerate(config.widths):
        # As KFP hands a list parameter over: numbers as floats.
        floats = [[float(v) for v in pair] for pair in widths]
        extracted = tracked.extract(trained, floats, str(tmp_path / f"m{i}"), prepared, config.data, OFF, "causal_lm")
        assert extracted["parity_max_abs_diff"] <= 1e-5
        evaluations.append(str(tmp_path / f"e{i}"))
        tracked.evaluate(str(tmp_path / f"m{i}"), prepared, evaluations[-1], config.data, False, OFF, "causal_lm",
                         teacher_dir=teacher)
    for sub in baselines:
        evaluations.append(str(tmp_path / f"e-{Path(sub).name}"))
        tracked.evaluate(str(Path(trained) / sub), prepared, evaluations[-1], config.data, False, OFF, "causal_lm",
                         teacher_dir=teacher)
    with pytest.raises(ConfigError, match="needs the Teacher step's folder"):
        tracked.evaluate(str(tmp_path / "m0"), prepared, str(tmp_path / "x"), config.data, False, OFF, "causal_lm")

    report = tracked.report(evaluations, teacher, str(tmp_path / "report"), OFF, "causal_lm")
    names = [r["name"] for r in report["models"]]
    assert names == ["ta-f32h2", "f16h2", "student-f8h1", "kd-f8h1", "ce_only-f8h1"]
    test = load_token_outputs(teacher, "test")
    for record in report["models"]:
        model = StandaloneDecoder.load(record["model_dir"])
        assert record["test_perplexity"] == pytest.approx(perplexity(model, test["input_ids"], test["lengths"])[0])
        assert record["cloze_examples"] == 2 and record["vocab_size"] == VOCAB
    assert set(tracked.report_metrics(report)) >= {"perplexity/f16h2", "perplexity/teacher", "cloze_accuracy/kd-f8h1"}
    assert "| Teacher | teacher |" in (tmp_path / "report" / "report.md").read_text()

    release = tracked.release(evaluations, [], trained, teacher, prepared, config.data, config.release,
                              str(tmp_path / "release"), OFF, "causal_lm")
    assert release["skipped"] == 1.0
    assert "task is causal_lm" in (tmp_path / "release" / "gate_report.md").read_text()


def _synthetic_teacher(prepared: str, out: str, config: PipelineConfig) -> None:
    """A Teacher folder as `lm_teacher_step` writes it, with random ids and top-k logits (no model needed)."""
    inputs = load_lm_inputs(prepared, config.data)
    rng = np.random.default_rng(1)
    for name, split in inputs.splits.items():
        n = len(split.texts)
        lengths = rng.integers(2, LENGTH + 1, size=n)
        real = np.arange(LENGTH)[None, :] < lengths[:, None]
        write_token_outputs(f"{out}/{name}.safetensors", {
            "input_ids": np.where(real, rng.integers(0, VOCAB, size=(n, LENGTH)), 0),
            "lengths": lengths,
            "topk_values": np.where(real[..., None], -np.sort(-rng.normal(size=(n, LENGTH, K))), 0).astype(np.float32),
            "topk_indices": np.where(real[..., None], rng.integers(0, VOCAB, size=(n, LENGTH, K)), -1),
        })
    examples = [{"passage": "a b c", "context": "a b", "target": "c", "input_ids": [1, 2, 3, 4], "target_start": 3},
                {"passage": "d e f", "context": "d e", "target": "f", "input_ids": [5, 6, 7], "target_start": 2}]
    Path(out, CLOZE_TEST).write_text(json.dumps({"summary": {"examples": 2}, "examples": examples}))
    Path(out, TEACHER_INFO).write_text(json.dumps({
        "teacher_spec": dict(config.teacher.spec), "fingerprint": "f" * 64, "vocab_size": VOCAB, "max_length": LENGTH,
        "data_content_hash": inputs.content_hash, "cache_key": "c" * 64,
        "evaluation": {"test_perplexity": 10.0, "cloze_accuracy": 0.5, "params": 1000, "flops_per_token": 2000.0},
    }))
