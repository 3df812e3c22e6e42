"""`matta compile`: the YAML is validated strictly against the pipeline-spec schema (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.image import IMAGE_ENV, ImageTagError, default_image_tag
from pipelines.code_version import code_version
from pipelines.compile import PipelineSpecError, compile_pipeline, set_pipeline_image, validate_pipeline_yaml
from tests.kfp.helpers import REPO_ROOT, run_cli

runner = CliRunner()
REGISTRY_PATH = "europe-docker.pkg.dev/proj/repo/matta"
CLUSTER_IMAGE = f"{REGISTRY_PATH}:0.1.0"
#: start-run, prepare, teacher, train, extract+evaluate (every width and baseline), report, release, end-run.
EXECUTORS = 8


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    compile_pipeline(path)
    return path


def test_the_compiled_pipeline_has_the_dag_and_parameters(compiled: Path) -> None:
    spec = validate_pipeline_yaml(compiled)
    assert spec.pipeline_info.name == "matta"
    params = set(spec.root.input_definitions.parameters)
    assert params == {"task", "name", "data_json", "teacher_json", "model_json", "train_json", "release_json", "widths",
                      "extraction_json",
                      "cache_dir", "measure_speed", "tracking_uri", "parent_run_id"}
    # Every step inside one ExitHandler; its exit task ends the MLflow parent run however the steps ended.
    root_tasks = spec.root.dag.tasks
    assert set(root_tasks) == {"exit-handler-1", "end-run"}
    policy = root_tasks["end-run"].trigger_policy
    assert policy.strategy == policy.ALL_UPSTREAM_TASKS_COMPLETED
    assert list(root_tasks["end-run"].dependent_tasks) == ["exit-handler-1"]
    assert "status" in spec.components["comp-end-run"].input_definitions.parameters  # its PipelineTaskFinalStatus
    tasks = spec.components["comp-exit-handler-1"].dag.tasks
    assert set(tasks) == {"start-run", "prepare-data", "cache-teacher-outputs", "train-models", "extract-and-evaluate",
                          "write-report", "release-models"}
    # The first task opens the tracking run and reads the data's version; prepare's cache key rests on the latter.
    assert tasks["prepare-data"].dependent_tasks == ["start-run"]
    assert tasks["prepare-data"].inputs.parameters["data_version"].task_output_parameter.producer_task == "start-run"
    # ... and what model.init_from names now (an alias's version): train's cache key, so a moved @champion retrains.
    pin = tasks["train-models"].inputs.parameters["init_from_version"].task_output_parameter
    assert (pin.producer_task, pin.output_parameter_key) == ("start-run", "init_from_version")
    # Side effects are never served from a cache, nor the report (each run's parent run gets its own); the steps
    # that only compute may be.
    never_cached = {name for name, t in tasks.items() if not t.caching_options.enable_cache}
    assert never_cached == {"start-run", "write-report", "release-models"}
    assert not root_tasks["end-run"].caching_options.enable_cache
    # One task extracts and evaluates every width and the baselines; the report and the release read its folders.
    assert set(tasks["extract-and-evaluate"].dependent_tasks) == {"cache-teacher-outputs", "prepare-data",
                                                                "train-models"}
    # The report also reads the prepared data and the train folder, for its header's quarantine counts and warnings.
    assert set(tasks["write-report"].dependent_tasks) == {"cache-teacher-outputs", "extract-and-evaluate",
                                                          "prepare-data", "train-models"}
    assert "start-run" in tasks["release-models"].dependent_tasks  # its idempotency key: the run's parent run id
    assert not spec.root.output_definitions.artifacts  # KFP allows no pipeline outputs from inside an ExitHandler


def test_the_cacheable_steps_take_nothing_that_changes_from_run_to_run(compiled: Path) -> None:
    """A per-run value among a task's inputs (the parent run id start-run opens, the KFP job id) would make its
    cache key new on every run: a cluster run would prepare unchanged data and train an unchanged model again."""
    spec = validate_pipeline_yaml(compiled)
    tasks = spec.components["comp-exit-handler-1"].dag.tasks
    for name, task in tasks.items():
        if not task.caching_options.enable_cache:
            continue
        for input_name, value in task.inputs.parameters.items():
            producer = value.task_output_parameter.producer_task
            if producer == "start-run":  # only what changes when the data or the warm start's weights do
                assert (name, value.task_output_parameter.output_parameter_key) in {
                    ("prepare-data", "data_version"), ("train-models", "init_from_version")}
            assert "{{$" not in value.runtime_value.constant.string_value, (name, input_name)
            if producer:  # else the output of another cacheable step
                assert producer == "start-run" or tasks[producer].caching_options.enable_cache, (name, input_name)
        # No parent run id at all, not even the one `matta run` passes to start-run: they find the parent by the
        # run's identity, so a local rerun hits their cache as a cluster run does.
        parent = task.inputs.parameters["parent_run_id"]
        assert parent.runtime_value.constant.string_value == "" and not parent.component_input_parameter, name


def _task(doc: dict, name: str) -> dict:
    return doc["components"]["comp-exit-handler-1"]["dag"]["tasks"][name]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda doc: doc.update(pipelineInfoo={"name": "x"}), "pipelineInfoo"),
        (lambda doc: _task(doc, "prepare-data").update(retryPolicyy={}), "retryPolicyy"),
        (lambda doc: next(iter(doc["deploymentSpec"]["executors"].values()))["container"].update(imagee="x"),
         "imagee"),
        (lambda doc: _task(doc, "prepare-data")["componentRef"].update(name="comp-nope"), "comp-nope"),
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


def _executor_images(path: Path) -> list[str]:
    """Every task's image, read from the strictly parsed deployment section."""
    validate_pipeline_yaml(path)  # raises on any schema error
    doc = yaml.safe_load(path.read_text())
    deployment = json_format.ParseDict(doc["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig(),
                                       ignore_unknown_fields=False)
    return [e.container.image for e in deployment.executors.values()]


def test_matta_compile_cli(tmp_path: Path) -> None:
    result = run_cli("compile", "--output", str(tmp_path / "p.yaml"), "--image", CLUSTER_IMAGE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "validated against the pipeline-spec schema" in result.stdout
    assert f"image {CLUSTER_IMAGE}" in result.stdout
    assert code_version() in result.stdout  # the CLI ran from this same tree
    assert (tmp_path / "p.yaml").stat().st_size > 10_000
    assert _executor_images(tmp_path / "p.yaml") == [CLUSTER_IMAGE] * EXECUTORS
    assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]  # no staged file left behind
    assert REPO_ROOT.is_dir()


@pytest.mark.parametrize("image", [CLUSTER_IMAGE, f"{CLUSTER_IMAGE.split(':')[0]}@sha256:{'ab' * 32}"],
                         ids=["tag", "digest"])
def test_compile_sets_the_image_of_every_task(tmp_path: Path, image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_ENV, raising=False)
    out = tmp_path / "p.yaml"
    result = runner.invoke(app, ["compile", "--output", str(out), "--image", image])
    assert result.exit_code == 0, result.output
    assert _executor_images(out) == [image] * EXECUTORS
    # Only the image changed: the rest of the YAML is what kfp wrote, header comment included.
    reference = tmp_path / "reference.yaml"
    compile_pipeline(reference)
    default = default_image_tag()
    assert out.read_text() == reference.read_text().replace(f"image: {default}\n", f"image: {image}\n")


def test_matta_image_is_the_default_for_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(IMAGE_ENV, CLUSTER_IMAGE)
    result = runner.invoke(app, ["compile", "--output", str(tmp_path / "p.yaml")])
    assert result.exit_code == 0, result.output
    assert _executor_images(tmp_path / "p.yaml") == [CLUSTER_IMAGE] * EXECUTORS


@pytest.mark.parametrize(
    ("args", "env", "messages"),
    [
        ([], None, [f"the default image (no --image given, {IMAGE_ENV} unset): image 'matta:",
                    "names no registry host"]),
        (["--image", "matta:0.1.0"], None, ["--image: image 'matta:0.1.0' is not fit for a cluster",
                                           "names no registry host"]),
        (["--image", "localhost/matta:0.1.0"], None, ["'localhost' is a registry on the machine that built"]),
        (["--image", f"{REGISTRY_PATH}:latest"], None, ["tag 'latest' is a moving name"]),
        (["--image", f"{REGISTRY_PATH}:1.2"], None, ["tag '1.2' is a major or major.minor version"]),
        (["--image", REGISTRY_PATH], None, ["it has no tag"]),
        ([], "matta-dev:0.1.0", [f"{IMAGE_ENV}: image 'matta-dev:0.1.0' is not fit for a cluster"]),
        (["--allow-local-image", "--image", "localhost/matta:latest"], None, ["uses ':latest'"]),
    ],
    ids=["default", "no-registry", "localhost", "latest", "major-minor", "untagged", "env", "local-latest"],
)
def test_compile_refuses_an_image_a_cluster_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: str | None, messages: list[str]
) -> None:
    if env is None:
        monkeypatch.delenv(IMAGE_ENV, raising=False)
    else:
        monkeypatch.setenv(IMAGE_ENV, env)
    out = tmp_path / "out" / "p.yaml"
    result = runner.invoke(app, ["compile", "--output", str(out), *args])
    assert result.exit_code == 2, result.output
    for message in messages:
        assert message in result.output
    if "--allow-local-image" not in args:
        assert "pass --image REGISTRY/PATH/matta:VERSION (or @sha256:...), or set MATTA_IMAGE to it" in result.output
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_allow_local_image_skips_only_the_cluster_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_ENV, raising=False)
    out = tmp_path / "p.yaml"
    result = runner.invoke(app, ["compile", "--output", str(out), "--allow-local-image"])
    assert result.exit_code == 0, result.output
    assert _executor_images(out) == [default_image_tag()] * EXECUTORS
    result = runner.invoke(app, ["compile", "--output", str(out), "--allow-local-image", "--image",
                                 "localhost/matta:0.1.0"])
    assert result.exit_code == 0, result.output
    assert _executor_images(out) == ["localhost/matta:0.1.0"] * EXECUTORS


def test_compile_pipeline_takes_a_local_image_and_keeps_the_old_file_on_refusal(tmp_path: Path) -> None:
    """The Python API is what a local Docker run compiles with: no cluster check, the basic one only."""
    out = tmp_path / "p.yaml"
    compile_pipeline(out, image="localhost/matta:0.1.0")
    assert _executor_images(out) == ["localhost/matta:0.1.0"] * EXECUTORS
    before = out.read_text()
    with pytest.raises(ImageTagError, match="uses ':latest'"):
        compile_pipeline(out, image="localhost/matta:latest")
    assert out.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]


def test_set_pipeline_image_needs_a_container_executor(tmp_path: Path, compiled: Path) -> None:
    doc = yaml.safe_load(compiled.read_text())
    doc["deploymentSpec"]["executors"] = {}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(PipelineSpecError, match="no container executor"):
        set_pipeline_image(bad, CLUSTER_IMAGE)
