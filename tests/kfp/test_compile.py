"""`matta compile`: the YAML is validated strictly against the pipeline-spec schema (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.code_version import code_version
from pipelines.compile import PipelineSpecError, compile_pipeline, validate_pipeline_yaml
from tests.kfp.helpers import REPO_ROOT, run_cli


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    compile_pipeline(path)
    return path


def test_the_compiled_pipeline_has_the_dag_and_parameters(compiled: Path) -> None:
    spec = validate_pipeline_yaml(compiled)
    assert spec.pipeline_info.name == "matta"
    params = set(spec.root.input_definitions.parameters)
    assert params == {"task", "data_json", "teacher_json", "model_json", "train_json", "release_json", "widths",
                      "cache_dir", "measure_speed", "tracking_uri", "parent_run_id"}
    root_tasks = spec.root.dag.tasks
    assert root_tasks["train-models"].dependent_tasks == ["cache-teacher-outputs", "prepare-data"]
    loops = [t for name, t in root_tasks.items() if name.startswith("for-loop")]
    assert len(loops) == 2  # the widths and the baselines
    assert set(root_tasks["write-report"].dependent_tasks) >= {"for-loop-1", "for-loop-2"}
    # The release is the last step, beside the report: it reads the evaluations and models of both loops.
    assert set(root_tasks["release-models"].dependent_tasks) >= {"for-loop-1", "for-loop-2", "train-models"}
    assert set(spec.root.output_definitions.artifacts) == {"report", "report_html", "release"}


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda doc: doc.update(pipelineInfoo={"name": "x"}), "pipelineInfoo"),
        (lambda doc: doc["root"]["dag"]["tasks"]["prepare-data"].update(retryPolicyy={}), "retryPolicyy"),
        (lambda doc: next(iter(doc["deploymentSpec"]["executors"].values()))["container"].update(imagee="x"),
         "imagee"),
        (lambda doc: doc["root"]["dag"]["tasks"]["prepare-data"]["componentRef"].update(name="comp-nope"),
         "comp-nope"),
        (lambda doc: next(iter(doc["deploymentSpec"]["executors"].values()))["container"].update(image="matta"),
         "has no tag"),
    ],
    ids=["unknown-top-field", "unknown-task-field", "unknown-executor-field", "dangling-ref", "untagged-image"],
)
def test_validation_is_strict(compiled: Path, tmp_path: Path, where, message: str) -> None:
    doc = yaml.safe_load(compiled.read_text())
    where(doc)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(PipelineSpecError, match=message):
        validate_pipeline_yaml(bad)


def test_matta_compile_cli(tmp_path: Path) -> None:
    result = run_cli("compile", "--output", str(tmp_path / "p.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "validated against the pipeline-spec schema" in result.stdout
    assert code_version() in result.stdout  # the CLI ran from this same tree
    assert (tmp_path / "p.yaml").stat().st_size > 10_000
    assert REPO_ROOT.is_dir()
