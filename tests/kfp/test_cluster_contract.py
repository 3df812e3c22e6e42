"""The cluster contract: what KFP on GKE (or Vertex AI) receives when a cluster config is compiled.

Read from the compiled YAML itself, strictly parsed: every task's resources, image, retry policy, caching flag and
Secret / ConfigMap references, and no path of this machine anywhere in the parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.cluster import MLFLOW_SECRET_REQUIRED_KEYS
from matta_core.config import PipelineConfig
from matta_core.image import check_cluster_image_ref
from pipelines.cluster import cluster_arguments, compile_cluster_pipeline
from pipelines.compile import validate_pipeline_yaml
from pipelines.preflight import PreflightError

IMAGE = "europe-docker.pkg.dev/proj/repo/matta:0.1.0"
GPU_IMAGE = "europe-docker.pkg.dev/proj/repo/matta-gpu:0.1.0"
CLUSTER_CONFIG: dict[str, Any] = {
    "name": "matta-nightly",
    "cache_dir": "gs://team-bucket/matta/cache",
    "cluster": {"pipeline_root": "gs://team-bucket/matta/root", "image": IMAGE, "gpu_image": GPU_IMAGE,
                "mlflow_secret": "matta-mlflow", "settings_config_map": "matta-settings"},
    "train": {"device": "cuda"},
    "resources": {"train": {
        "cpu_request": "4", "cpu_limit": "8", "memory_request": "8Gi", "memory_limit": "16Gi",
        "accelerator_type": "nvidia.com/gpu", "accelerator_count": 1,
        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "retries": 3, "timeout_seconds": 43200,
    }},
}
#: Component name prefix -> the `resources:` step whose settings its tasks carry.
STEP_OF_COMPONENT = {
    "comp-start-run": "tracking", "comp-end-run": "tracking", "comp-prepare-data": "prepare",
    "comp-cache-teacher-outputs": "teacher", "comp-train-models": "train", "comp-extract-and-evaluate": "evaluate",
    "comp-write-report": "report", "comp-release-models": "release",
}
NEVER_CACHED = {"comp-start-run", "comp-end-run", "comp-write-report", "comp-release-models"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineConfig, dict[str, Any], list[dict]]:
    config = PipelineConfig.parse(CLUSTER_CONFIG)
    path = tmp_path_factory.mktemp("cluster") / "pipeline.yaml"
    compile_cluster_pipeline(config, path)
    validate_pipeline_yaml(path)  # strict protobuf parse of both documents
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return config, docs[0], docs[1:]


def _tasks(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container task, in the root DAG and inside the loops, by task name."""
    found = {}
    for dag in [spec["root"], *spec["components"].values()]:
        for name, task in dag.get("dag", {}).get("tasks", {}).items():
            component = spec["components"][task["componentRef"]["name"]]
            if "executorLabel" in component:
                found[name] = task
    return found


def test_every_task_has_its_resources_image_retries_and_cache_flag(compiled) -> None:
    config, spec, _ = compiled
    executors = spec["deploymentSpec"]["executors"]
    tasks = _tasks(spec)
    assert len(tasks) == 8  # start, prepare, teacher, train, extract+evaluate, report, release, end
    for name, task in tasks.items():
        component = task["componentRef"]["name"]
        step = STEP_OF_COMPONENT[component]
        wanted = config.resources.of(step)
        container = executors[spec["components"][component]["executorLabel"]]["container"]
        assert check_cluster_image_ref(container["image"]) == container["image"], name
        resources = container["resources"]
        assert resources["resourceCpuRequest"] == wanted.cpu_request, name
        assert resources["resourceCpuLimit"] == wanted.cpu_limit, name
        assert resources["resourceMemoryRequest"] == wanted.memory_request, name
        assert resources["resourceMemoryLimit"] == wanted.memory_limit, name
        assert task["retryPolicy"]["maxRetryCount"] == wanted.retries, name
        assert task["retryPolicy"]["backoffDuration"] == f"{wanted.retry_backoff_seconds}s", name
        assert task.get("cachingOptions", {}).get("enableCache", False) is (component not in NEVER_CACHED), name
    train = executors[spec["components"]["comp-train-models"]["executorLabel"]]["container"]
    assert train["image"] == GPU_IMAGE
    assert train["resources"]["accelerator"] == {"resourceCount": "1", "resourceType": "nvidia.com/gpu",
                                                 "count": "1", "type": "nvidia.com/gpu"}
    cpu_only = [c["container"] for label, c in executors.items() if "train" not in label]
    assert {c["image"] for c in cpu_only} == {IMAGE}
    assert not any("accelerator" in c.get("resources", {}) for c in cpu_only)


def test_every_task_reads_mlflow_from_the_secret_and_settings_from_the_config_map(compiled) -> None:
    _, spec, platform_docs = compiled
    assert len(platform_docs) == 1
    executors = platform_docs[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(spec["deploymentSpec"]["executors"])
    for label, k8s in executors.items():
        secrets = k8s["secretAsEnv"]
        required = [s for s in secrets if not s.get("optional")]
        assert [s["secretNameParameter"]["runtimeValue"]["constant"] for s in required] == ["matta-mlflow"], label
        assert [m["envVar"] for m in required[0]["keyToEnv"]] == list(MLFLOW_SECRET_REQUIRED_KEYS), label
        assert any(s.get("optional") for s in secrets), label  # username / password / token, when the server has auth
        assert [c["configMapNameParameter"]["runtimeValue"]["constant"] for c in k8s["configMapAsEnv"]] == [
            "matta-settings"], label
        assert int(k8s["activeDeadlineSeconds"]) > 0, label
        # The run's id from the pod's label, not an input: the cacheable steps find the MLflow parent by it.
        assert k8s["fieldPathAsEnv"] == [{"name": "MATTA_KFP_RUN_ID",
                                          "fieldPath": "metadata.labels['pipeline/runid']"}], label
    train = next(v for label, v in executors.items() if "train" in label)
    assert train["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert train["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert int(train["activeDeadlineSeconds"]) == 43200


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            return _strings(json.loads(value)) if value.startswith(("{", "[")) else [value]
        except json.JSONDecodeError:
            return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_no_local_path_and_no_credentials_in_the_parameters(compiled) -> None:
    config, spec, _ = compiled
    defaults = {name: p.get("defaultValue") for name, p in spec["root"]["inputDefinitions"]["parameters"].items()}
    arguments = cluster_arguments(config)
    assert set(arguments) <= set(defaults)
    assert defaults["tracking_uri"] == arguments["tracking_uri"] == ""  # from the Secret, never a parameter
    assert defaults["parent_run_id"] == arguments["parent_run_id"] == ""  # the first task opens it
    assert defaults["cache_dir"] == "gs://team-bucket/matta/cache"
    assert json.loads(defaults["train_json"])["checkpoint_dir"] == "gs://team-bucket/matta/root/checkpoints"
    for value in _strings(defaults) + _strings(arguments):
        assert not value.startswith(("/", "./", "~", "file:", "sqlite:", ".matta")), value
        assert "://" not in value or value.startswith("gs://"), value


def test_compile_config_refuses_laptop_settings_naming_each_field(tmp_path: Path) -> None:
    laptop = PipelineConfig.parse({"cluster": {"image": IMAGE}})  # the defaults: .matta_cache, no pipeline root
    with pytest.raises(PreflightError) as error:
        compile_cluster_pipeline(laptop, tmp_path / "p.yaml")
    assert "cluster.pipeline_root" in str(error.value) and "cache_dir" in str(error.value)
    assert not (tmp_path / "p.yaml").exists()


def test_matta_compile_with_a_config_writes_the_cluster_yaml(tmp_path: Path) -> None:
    config_file = tmp_path / "cluster.yaml"
    config_file.write_text(yaml.safe_dump(CLUSTER_CONFIG))
    out = tmp_path / "pipeline.yaml"
    result = CliRunner().invoke(app, ["compile", "--config", str(config_file), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert GPU_IMAGE in out.read_text() and "matta-mlflow" in out.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**CLUSTER_CONFIG, "cache_dir": ".matta_cache"}))
    result = CliRunner().invoke(app, ["compile", "--config", str(bad), "--output", str(tmp_path / "no.yaml")])
    assert result.exit_code == 2 and "cache_dir" in result.output
    assert not (tmp_path / "no.yaml").exists()
