"""The whole pipeline through kfp.local on a Banking77 subset with the real MiniLM Teacher, tracked on a real
MLflow server: artifacts, standalone models, the report, the MLflow run tree, and the release (gate, registry,
A/B handoffs)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow.entities import Run
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.config import PipelineConfig
from matta_core.families.classifier.extract import load_extracted
from matta_core.families.classifier.inputs import load_inputs
from matta_core.features import HashedNgramFeaturizer
from matta_core.release import tags as RT
from matta_core.release.handoff import validate_handoff
from matta_core.tracking import tags as T
from pipelines.code_version import code_version
from pipelines.local_runner import PipelineRunResult, run_pipeline
from tests.kfp.helpers import SMALL_RELEASE, small_config
from tests.mlflow_server import MLflowServer

MODELS = {"ta-256", "96", "student-32", "kd-32", "ce_only-32"}
STEP_RUNS = {"prepare", "teacher", "train", "extract-256", "extract-96", "extract-32", "evaluate-ta-256",
             "evaluate-96", "evaluate-student-32", "evaluate-kd-32", "evaluate-ce_only-32", "report", "release"}
#: Size class -> the width the release picks for it (see SMALL_RELEASE); xxs fits no width.
RELEASED = {"xs": "student-32", "s": "96"}


@pytest.mark.slow
def test_pipeline_end_to_end_on_a_real_mlflow_server(tmp_path: Path, teacher_cache: Path,
                                                     mlflow_server: MLflowServer) -> None:
    prefix = f"kfp{uuid.uuid4().hex[:6]}"  # registered models of this run only (the server is shared)
    config = PipelineConfig.parse(small_config(tmp_path, teacher_cache, tracking_uri=mlflow_server.uri,
                                               release={**SMALL_RELEASE, "model_prefix": prefix}))
    result = run_pipeline(config)

    # The report: every width and baseline against the Teacher, with the chart inside the HTML and Markdown views.
    report = json.loads((result.report_dir / "report.json").read_text())
    records = {r["name"]: r for r in report["models"]}
    assert set(records) == MODELS
    assert report["teacher"]["test_accuracy"] > 0.5
    assert all(r["accuracy"] > 10 / 77 for r in records.values()), records
    assert (result.report_dir / "pareto.png").stat().st_size > 1000
    assert "data:image/png;base64," in result.report_html.read_text()
    [run_dir] = list(result.pipeline_root.glob("matta-*"))
    assert "](data:image/png;base64," in (run_dir / "write-report" / "report_md").read_text()
    assert json.loads((run_dir / "write-report" / "metrics").read_text())["accuracy/96"] == records["96"]["accuracy"]

    # Every evaluated model loads standalone (torch + safetensors, nothing of the pipeline) and reproduces its
    # evaluated accuracy on the test split.
    [prepared] = list(run_dir.glob("prepare-data/prepared"))
    test = load_inputs(str(prepared), config.data).splits["test"]
    for name, record in records.items():
        model, meta = load_extracted(record["model_dir"])
        features = HashedNgramFeaturizer(meta.features).transform(test.texts)
        batch = features.batch(torch.arange(len(features)))
        with torch.inference_mode():
            predicted = model(batch.ids, batch.offsets, batch.counts).argmax(1).numpy()
        assert (predicted == test.labels).mean() == pytest.approx(record["accuracy"]), name

    # MLflow: one parent run, a nested child per step, per-arm runs under train, lineage tags, models.
    client = mlflow.MlflowClient(mlflow_server.uri)
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[T.RUN_KIND] == "pipeline"
    assert parent.data.metrics["accuracy/96"] == pytest.approx(records["96"]["accuracy"])
    assert {f.path for f in client.list_artifacts(result.run_id, "figures")} == {"figures/pareto.png"}
    children = client.search_runs([result.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    steps = {run.info.run_name: run for run in children}
    assert set(steps) == STEP_RUNS
    data_hash = steps["prepare"].data.tags[T.DATA_CONTENT_HASH]
    teacher_key = steps["teacher"].data.tags[T.TEACHER_CACHE_KEY]
    for name, run in steps.items():
        assert run.info.status == "FINISHED", name
        assert run.data.tags[T.CODE_VERSION] == code_version(), name
        assert run.data.tags[T.DATA_CONTENT_HASH] == data_hash, name
        if name != "prepare":
            assert run.data.tags[T.TEACHER_CACHE_KEY] == teacher_key, name
    for name, record in records.items():
        evaluation = steps[f"evaluate-{name}"]
        assert evaluation.data.metrics["accuracy"] == pytest.approx(record["accuracy"])
    assert steps["extract-96"].data.tags[T.MODEL_WIDTHS] == "96"
    assert steps["teacher"].data.metrics["teacher_accuracy_test"] == pytest.approx(report["teacher"]["test_accuracy"])

    train_id = steps["train"].info.run_id
    arms = client.search_runs([result.experiment_id], f"tags.mlflow.parentRunId = '{train_id}'")
    assert {run.info.run_name for run in arms} == {"train-matta", "train-kd", "train-ce_only"}
    matta_arm = next(run for run in arms if run.info.run_name == "train-matta")
    history = client.get_metric_history(matta_arm.info.run_id, "total")
    assert len(history) == int(steps["train"].data.metrics["matta_steps"]) > 10

    mlflow.set_tracking_uri(mlflow_server.uri)
    logged = mlflow.search_logged_models(experiment_ids=[result.experiment_id], output_format="list")
    # The release step logs each candidate it registers as its own model (<class>-<width>).
    assert {m.name for m in logged} == MODELS | {f"{c}-{w}" for c, w in RELEASED.items()}
    served = mlflow.pyfunc.load_model(next(m for m in logged if m.name == "96").model_uri)
    out = served.predict(pd.DataFrame({"text": test.texts[:8]}))
    assert list(out["label"]) == [meta_label(records["96"]["model_dir"], t) for t in test.texts[:8]]

    check_release(result, prefix, steps["release"], data_hash, teacher_key, test.texts[:8], records)


def check_release(result: PipelineRunResult, prefix: str, release_run: Run, data_hash: str, teacher_key: str,
                  texts: list[str], records: dict[str, dict]) -> None:
    """The release step of the same run: handoffs as pipeline artifacts and in MLflow, versions registered as
    @challenger with lineage pointing at this pipeline run, and the class nothing fits explained."""
    summary = result.release_summary
    assert summary["status"] == "gated" and summary["pipeline_run_id"] == result.run_id
    assert {c: d["candidate"] for c, d in summary["classes"].items() if d["passed"]} == RELEASED
    assert not summary["classes"]["xxs"]["passed"] and summary["classes"]["xxs"]["candidate"] is None
    gate_report = (result.release_dir / "gate_report.md").read_text()
    assert "no width fits size class 'xxs'" in gate_report and gate_report.count("PASS") >= 2
    [run_dir] = list(result.pipeline_root.glob("matta-*"))
    assert (run_dir / "release-models" / "gate_report").read_text() == gate_report  # the Markdown view for the UI
    where = "\n".join(result.where_to_look())
    assert f"registry: matta models list --tracking-uri {result.tracking_uri}" in where
    assert f"s: 96 -> {prefix}-s v1 (@challenger)" in where and "xxs: rejected (candidate)" in where

    client = mlflow.MlflowClient(result.tracking_uri)
    release_id = release_run.info.run_id
    assert release_run.data.tags[RT.gate_tag("xxs", "passed")] == "false"
    for size_class, width in RELEASED.items():
        name = f"{prefix}-{size_class}"
        handoff = json.loads((result.release_dir / size_class / "ab_handoff.json").read_text())
        validate_handoff(handoff)
        assert handoff["challenger"]["model_uri"] == f"models:/{name}/1"
        assert (run_dir / "release-models" / "release" / size_class / "ab_handoff.json").is_file()
        logged = client.list_artifacts(release_id, f"handoff/{size_class}")
        assert {Path(f.path).name for f in logged} == {"ab_handoff.json", "ab_handoff.md"}

        assert {a: str(v) for a, v in client.get_registered_model(name).aliases.items()} == {"challenger": "1"}
        version = client.get_model_version(name, "1")
        assert version.tags[RT.PIPELINE_RUN_ID] == result.run_id  # the MLflow parent run: the idempotency key
        assert version.tags[RT.RELEASE_RUN_ID] == release_id and version.run_id == release_id
        assert version.tags[RT.MODEL_NAME] == width and version.tags[RT.SIZE_CLASS] == size_class
        assert version.tags[T.DATA_CONTENT_HASH] == data_hash and version.tags[T.TEACHER_CACHE_KEY] == teacher_key
        assert version.tags[T.CODE_VERSION] == code_version() and version.tags[T.TEACHER_FINGERPRINT]
        assert version.tags[RT.RELEASE_HANDOFF] == f"runs:/{release_id}/handoff/{size_class}/ab_handoff.json"

    # The challenger serves from the registry what the width folder predicts.
    served = mlflow.pyfunc.load_model(f"models:/{prefix}-s@challenger")
    assert list(served.predict(pd.DataFrame({"text": texts}))["label"]) == [
        meta_label(records["96"]["model_dir"], t) for t in texts]
    listed = CliRunner().invoke(app, ["models", "list", "--prefix", prefix, "--json",
                                      "--tracking-uri", result.tracking_uri])
    assert listed.exit_code == 0, listed.output
    assert {m["size_class"]: set(m["versions"]) for m in json.loads(listed.output)} == {
        "xs": {"challenger"}, "s": {"challenger"}}


def meta_label(model_dir: str, text: str) -> str:
    """The label the standalone model in `model_dir` gives `text`, computed without MLflow."""
    model, meta = load_extracted(model_dir)
    batch = HashedNgramFeaturizer(meta.features).transform([text]).batch(torch.arange(1))
    with torch.inference_mode():
        return meta.labels[int(model(batch.ids, batch.offsets, batch.counts).argmax(1))]
