"""``cluster.settings_secret``: MLflow settings from Google Secret Manager, the one way to track a Vertex AI run.

The config's checks; the compiled YAML (the secret's name and each step's timeout as environment variables in the
pipeline spec proper, which Vertex AI reads); and `load_settings_secret` against a local stub of Secret Manager's
REST API (``GET /v1/{name}:access``), the real client code, anonymous over plain http.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import google_crc32c
import pytest
import yaml

from matta_core.cluster.secret_settings import (
    ACCESSOR_ROLE,
    SECRET_MANAGER_ENDPOINT_ENV,
    SETTINGS_SECRET_ENV,
    SettingsSecretError,
    load_settings_secret,
)
from matta_core.cluster.settings import SETTINGS_SECRET_KEYS
from matta_core.config import ConfigError, PipelineConfig
from matta_core.task_timeout import TASK_STEP_ENV, TASK_TIMEOUT_ENV
from pipelines.cluster import compile_cluster_pipeline
from pipelines.cluster_preflight import cluster_warnings
from pipelines.compile import validate_pipeline_yaml
from pipelines.vertex import VertexError, check_vertex_config, vertex_template
from tests.json_stub import JsonStubHandler, serving

IMAGE = "europe-docker.pkg.dev/proj/repo/matta:0.1.0"
SECRET = "projects/my-project/secrets/matta-settings/versions/3"
SHAPE = "projects/<project id or number>/secrets/<secret id>/versions/<version number or latest>"
CONFIG: dict[str, Any] = {
    "name": "matta-vertex",
    "cache_dir": "gs://team-bucket/matta/cache",
    "cluster": {"pipeline_root": "gs://team-bucket/matta/root", "image": IMAGE, "settings_secret": SECRET},
    # One step without a timeout: its task carries no timeout variable.
    "resources": {"report": {"timeout_seconds": None}},
}
#: Component -> the `resources:` step whose settings its task carries (as in test_cluster_contract).
STEP_OF_COMPONENT = {
    "comp-start-run": "tracking", "comp-end-run": "tracking", "comp-prepare-data": "prepare",
    "comp-cache-teacher-outputs": "teacher", "comp-train-models": "train", "comp-extract-and-evaluate": "evaluate",
    "comp-evaluate-model": "evaluate", "comp-write-report": "report", "comp-release-models": "release",
}


def _cluster(**fields: Any) -> dict[str, Any]:
    return {"cluster": {"pipeline_root": "gs://team-bucket/matta/root", "image": IMAGE, **fields}}


# --- the config ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "projects/my-project/secrets/matta-settings",  # no version
    "projects/my-project/secrets/matta-settings/versions/0",  # versions start at 1
    "projects/my-project/secrets/matta-settings/versions/newest",  # only `latest` is an alias
    "projects/My-Project/secrets/matta-settings/versions/1",  # project ids are lower-case
    "projects/proj/secrets/matta-settings/versions/1",  # a project id has at least 6 characters
    "projects/my-project-/secrets/matta-settings/versions/1",  # and does not end with '-'
    "projects/my-project/secrets/matta.settings/versions/1",  # '.' is not allowed in a secret id
    "projects/my-project/secrets//versions/1",
    "https://secretmanager.googleapis.com/v1/projects/my-project/secrets/s/versions/1",
    "matta-settings",
])
def test_a_bad_secret_version_name_is_refused_with_the_expected_shape(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        PipelineConfig.parse(_cluster(settings_secret=name))
    assert "cluster.settings_secret" in str(error.value) and SHAPE in str(error.value)


@pytest.mark.parametrize("name", [
    SECRET, "projects/123456789012/secrets/matta_settings-2/versions/latest",
    "projects/a12345/secrets/S/versions/10",
])
def test_secret_version_names_by_project_id_or_number_and_version_or_latest_are_accepted(name: str) -> None:
    assert PipelineConfig.parse(_cluster(settings_secret=name)).cluster.settings_secret == name


def test_settings_secret_and_mlflow_secret_together_are_refused() -> None:
    with pytest.raises(ConfigError) as error:
        PipelineConfig.parse(_cluster(settings_secret=SECRET, mlflow_secret="matta-mlflow"))
    assert "cluster.settings_secret and cluster.mlflow_secret are both set" in str(error.value)


def test_a_settings_secret_tracks_the_run_and_passes_the_vertex_check() -> None:
    config = PipelineConfig.parse(CONFIG)
    assert cluster_warnings(config) == []
    check_vertex_config(config)
    [warning] = cluster_warnings(PipelineConfig.parse(_cluster()))
    assert "cluster.settings_secret" in warning and "untracked" in warning


def test_vertex_refuses_kubernetes_objects_and_points_at_settings_secret() -> None:
    with pytest.raises(VertexError) as error:
        check_vertex_config(PipelineConfig.parse(_cluster(mlflow_secret="matta-mlflow")))
    message = str(error.value)
    assert message.startswith("cluster.mlflow_secret: Kubernetes objects")
    assert "cluster.settings_secret" in message and ACCESSOR_ROLE in message


# --- the compiled pipeline ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineConfig, Path]:
    config = PipelineConfig.parse(CONFIG)
    path = tmp_path_factory.mktemp("secret") / "pipeline.yaml"
    compile_cluster_pipeline(config, path)
    validate_pipeline_yaml(path)
    return config, path


def _containers(spec: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every container task's step and container spec, by task name (the loops' tasks included)."""
    executors = spec["deploymentSpec"]["executors"]
    found = {}
    for dag in [spec["root"], *spec["components"].values()]:
        for name, task in dag.get("dag", {}).get("tasks", {}).items():
            component = task["componentRef"]["name"]
            if "executorLabel" in spec["components"][component]:
                label = spec["components"][component]["executorLabel"]
                found[name] = (STEP_OF_COMPONENT[component], executors[label]["container"])
    return found


def _check_env(config: PipelineConfig, spec: dict[str, Any]) -> None:
    containers = _containers(spec)
    assert {step for step, _ in containers.values()} >= {"tracking", "prepare", "teacher", "train", "evaluate",
                                                         "report", "release"}
    for name, (step, container) in containers.items():
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        assert env[SETTINGS_SECRET_ENV] == SECRET, name
        timeout = config.resources.of(step).timeout_seconds
        if timeout is None:
            assert TASK_TIMEOUT_ENV not in env and TASK_STEP_ENV not in env, name
        else:
            assert env[TASK_TIMEOUT_ENV] == str(timeout) and env[TASK_STEP_ENV] == step, name
    assert config.resources.report.timeout_seconds is None and config.resources.train.timeout_seconds


def test_every_task_carries_the_secret_name_and_its_steps_timeout(compiled) -> None:
    config, path = compiled
    spec, *platform = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    _check_env(config, spec)
    # On KFP the pod deadline stays; no Kubernetes Secret is referenced.
    executors = platform[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all("secretAsEnv" not in k8s and "configMapAsEnv" not in k8s for k8s in executors.values())
    assert any(int(k8s.get("activeDeadlineSeconds", 0)) > 0 for k8s in executors.values())


def test_the_vertex_template_keeps_the_secret_name_and_timeouts(compiled, tmp_path: Path) -> None:
    config, path = compiled
    docs = [doc for doc in yaml.safe_load_all(vertex_template(path, tmp_path / "vertex.yaml").read_text()) if doc]
    assert len(docs) == 1  # the Kubernetes platform spec is gone, the variables are not
    _check_env(config, docs[0])


# --- reading the secret -------------------------------------------------------------------------------------------

def _access_answer(data: bytes, crc: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": base64.b64encode(data).decode()}
    payload["dataCrc32c"] = str(google_crc32c.value(data) if crc is None else crc)  # int64: a string in JSON
    return {"name": SECRET.replace("my-project", "123456789012"), "payload": payload}


class StubSecretManager(JsonStubHandler):
    """Secret Manager's ``access`` method: answers from `answers` in turn (the last one repeats); records requests."""

    answers: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    requests: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.headers.get("Authorization")))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def secret_manager() -> Iterator[str]:
    StubSecretManager.answers, StubSecretManager.requests = [], []
    with serving(StubSecretManager) as url:
        yield url


def _environ(endpoint: str, **extra: str) -> dict[str, str]:
    return {SETTINGS_SECRET_ENV: SECRET, SECRET_MANAGER_ENDPOINT_ENV: endpoint, **extra}


def _error(environ: dict[str, str], *answers: tuple[int, dict[str, Any]]) -> str:
    StubSecretManager.answers = list(answers)
    with pytest.raises(SettingsSecretError) as error:
        load_settings_secret(environ, attempts=2, backoff_seconds=0.01)
    assert SECRET in str(error.value)
    return str(error.value)


def _google_error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "status": status, "message": message}}


def test_the_secrets_settings_become_environment_variables_and_set_ones_are_kept(secret_manager: str) -> None:
    settings = {"MLFLOW_TRACKING_URI": "https://mlflow.example.com", "MLFLOW_TRACKING_TOKEN": "s3cr3t-token",
                "GOOGLE_CLOUD_PROJECT": "my-project", "MLFLOW_TRACKING_INSECURE_TLS": "false"}
    StubSecretManager.answers = [(200, _access_answer(json.dumps(settings).encode()))]
    environ = _environ(secret_manager, GOOGLE_CLOUD_PROJECT="set-on-the-task", MLFLOW_TRACKING_INSECURE_TLS="")
    assert load_settings_secret(environ) == ["MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
                                             "MLFLOW_TRACKING_INSECURE_TLS"]
    assert environ["MLFLOW_TRACKING_URI"] == "https://mlflow.example.com"
    assert environ["MLFLOW_TRACKING_TOKEN"] == "s3cr3t-token"
    assert environ["GOOGLE_CLOUD_PROJECT"] == "set-on-the-task"  # a value set on purpose wins
    assert environ["MLFLOW_TRACKING_INSECURE_TLS"] == "false"  # an empty one does not count as set
    # Secret Manager's documented method; no token is sent over plain http.
    assert StubSecretManager.requests == [(f"/v1/{SECRET}:access", None)]


def test_no_secret_named_means_nothing_is_read() -> None:
    environ: dict[str, str] = {SECRET_MANAGER_ENDPOINT_ENV: "http://127.0.0.1:1"}
    assert load_settings_secret(environ) == []
    assert environ == {SECRET_MANAGER_ENDPOINT_ENV: "http://127.0.0.1:1"}


def test_transient_errors_are_retried(secret_manager: str) -> None:
    good = _access_answer(b'{"MLFLOW_TRACKING_URI": "https://mlflow.example.com"}')
    StubSecretManager.answers = [_google_error(503, "UNAVAILABLE", "try again"), (200, good)]
    environ = _environ(secret_manager)
    assert load_settings_secret(environ, attempts=3, backoff_seconds=0.01) == ["MLFLOW_TRACKING_URI"]
    assert len(StubSecretManager.requests) == 2


def test_permission_denied_names_the_role_the_service_account_needs(secret_manager: str) -> None:
    message = _error(_environ(secret_manager), _google_error(
        403, "PERMISSION_DENIED", f"Permission 'secretmanager.versions.access' denied for resource '{SECRET}'"))
    assert "permission denied" in message and ACCESSOR_ROLE in message
    assert "projects/my-project/secrets/matta-settings " in message  # the secret the role is granted on
    assert len(StubSecretManager.requests) == 1  # a refusal is final: not retried


@pytest.mark.parametrize(("answer", "expected"), [
    (_google_error(404, "NOT_FOUND", "Secret Version not found"), "not found (NOT_FOUND: Secret Version not found)"),
    (_google_error(400, "FAILED_PRECONDITION", "is in DISABLED state"), "HTTP 400 (FAILED_PRECONDITION"),
    (_google_error(503, "UNAVAILABLE", "down"), "HTTP 503 (UNAVAILABLE: down) (tried 2 times)"),
    ((200, {"name": SECRET}), "not a Secret Manager access response"),
])
def test_http_errors_say_what_secret_manager_answered(secret_manager: str, answer: Any, expected: str) -> None:
    assert expected in _error(_environ(secret_manager), answer)


def test_an_unreachable_endpoint_is_named() -> None:
    message = _error(_environ("http://127.0.0.1:1"), (200, {}))
    assert "Secret Manager at http://127.0.0.1:1 is not reachable" in message and "tried 2 times" in message


def test_a_corrupted_payload_fails_its_checksum(secret_manager: str) -> None:
    data = b'{"MLFLOW_TRACKING_URI": "https://mlflow.example.com"}'
    message = _error(_environ(secret_manager), (200, _access_answer(data, crc=google_crc32c.value(data) ^ 1)))
    assert "CRC32C" in message


def test_a_malformed_secret_name_in_the_environment_is_refused() -> None:
    with pytest.raises(SettingsSecretError) as error:
        load_settings_secret({SETTINGS_SECRET_ENV: "projects/p/secrets/s"})
    assert SETTINGS_SECRET_ENV in str(error.value) and SHAPE in str(error.value)


SECRET_VALUE = "hunter2-do-not-print"


@pytest.mark.parametrize(("payload", "expected"), [
    (b"MLFLOW_TRACKING_URI=" + SECRET_VALUE.encode(), "the payload is not JSON"),
    (b"\xff\xfe" + SECRET_VALUE.encode(), "not UTF-8"),
    (json.dumps([SECRET_VALUE]).encode(), "the payload is a JSON list, not an object"),
    (json.dumps({"MLFLOW_TRACKING_URI": "https://m", "MLFLOW_TRACKING_PASSWD": SECRET_VALUE}).encode(),
     f"unknown keys 'MLFLOW_TRACKING_PASSWD'; allowed: {', '.join(SETTINGS_SECRET_KEYS)}"),
    (json.dumps({"MLFLOW_TRACKING_TOKEN": SECRET_VALUE}).encode(), "MLFLOW_TRACKING_URI is missing or empty"),
    (json.dumps({"MLFLOW_TRACKING_URI": "https://m", "MLFLOW_TRACKING_INSECURE_TLS": True}).encode(),
     "values must be strings (as environment variables are), got MLFLOW_TRACKING_INSECURE_TLS (bool)"),
])
def test_a_payload_a_task_cannot_use_is_refused_without_showing_values(
        secret_manager: str, payload: bytes, expected: str) -> None:
    environ = _environ(secret_manager)
    message = _error(environ, (200, _access_answer(payload)))
    assert expected in message
    assert SECRET_VALUE not in message and "hunter2" not in message
    assert set(environ) == {SETTINGS_SECRET_ENV, SECRET_MANAGER_ENDPOINT_ENV}  # nothing half-applied
