"""The MLflow tracking server's image (docker/mlflow-server), built by `matta image build --mlflow-server` and run for
real the way infra/mlflow/deployment.yaml runs it: non-root (uid 10001), read-only root filesystem with a /tmp
tmpfs, no capabilities, basic auth (`--app-name=basic-auth`, its users in PostgreSQL), the slim settings, the
backend store on a real PostgreSQL (`start_postgres`) and artifacts served through the server to a gs:// bucket
on the GCS emulator. A client on the host then does what the pipeline does and the test reads the rows and
objects back from PostgreSQL and the bucket directly.

The build reuses the engine's layer cache (~25 s warm; cold ~3.5 min on a 2-core machine, most of it pip).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from matta_core.imagebuild.engine import Engine
from matta_core.tracking.gcs_emulator import EMULATOR_ENV, GCSEmulator, start_emulator, stop_emulator
from matta_core.tracking.local_server import free_port, healthy
from matta_core.tracking.postgres_server import PostgresServer, start_postgres, stop_postgres

pytestmark = [pytest.mark.slow, pytest.mark.container]

REPO = Path(__file__).resolve().parents[2]
MATTA = Path(sys.executable).parent / "matta"
#: A tag of its own: the tests never replace an image built under the default name (mlflow-server:<version>).
TEST_IMAGE = "matta-mlflow-server-test:ci"
MLFLOW_VERSION = "3.17.2"
UID = 10001
AUTH_DATABASE = "mlflow_auth"
ADMIN = "admin"
STARTUP_TIMEOUT_S = 120


@dataclass(frozen=True)
class RunningServer:
    uri: str
    container: str
    engine: Engine
    postgres: PostgresServer
    emulator: GCSEmulator
    bucket: str
    admin_password: str


@pytest.fixture(scope="session")
def server_image(engine: Engine) -> str:
    done = subprocess.run([str(MATTA), "image", "build", "--mlflow-server", "--tag", TEST_IMAGE, "--quiet"],
                          capture_output=True, text=True, cwd=REPO, timeout=1800)
    assert done.returncode == 0, f"the build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return engine.run("image", "inspect", "--format", "{{index .RepoTags 0}}", TEST_IMAGE).stdout.strip()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = start_postgres(tmp_path_factory.mktemp("mlflow-server-postgres"))
    try:
        # basic auth keeps its users in a database of its own on the same server, as infra/mlflow's ini says.
        connection = psycopg2.connect(**server.connect_kwargs(superuser=True), connect_timeout=10)
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE {AUTH_DATABASE} OWNER "{server.user}"')
        finally:
            connection.close()
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSEmulator]:
    started = start_emulator(tmp_path_factory.mktemp("mlflow-server-gcs") / "emulator.log")
    try:
        yield started
    finally:
        stop_emulator(started.process)


@pytest.fixture(scope="module")
def server(server_image: str, engine: Engine, postgres: PostgresServer, emulator: GCSEmulator,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    port = free_port()
    bucket = emulator.make_bucket(f"mlflow-{uuid.uuid4().hex[:12]}").removeprefix("gs://")
    admin_password = secrets.token_urlsafe(16)
    # The Secret infra/mlflow mounts at /etc/mlflow-auth: readable by the image's user, nothing else there.
    auth = tmp_path_factory.mktemp("mlflow-auth")
    auth.chmod(0o755)
    ini = auth / "basic_auth.ini"
    auth_uri = postgres.sqlalchemy_uri.rsplit("/", 1)[0] + f"/{AUTH_DATABASE}"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = {auth_uri}\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                   "grant_default_workspace_access = false\n")
    ini.chmod(0o644)
    env = {
        # The deployment's environment (deployment.yaml, mlflow-server.config.env, mlflow-server.env).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_AUTH_CONFIG_PATH": "/etc/mlflow-auth/basic_auth.ini",
        "MLFLOW_BACKEND_STORE_URI": postgres.sqlalchemy_uri,
        "MLFLOW_ARTIFACTS_DESTINATION": f"gs://{bucket}/artifacts",
        "MLFLOW_SERVER_ALLOWED_HOSTS": f"127.0.0.1:{port},localhost:{port}",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN,
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        # google-cloud-storage inside the container talks to the emulator (host network: same 127.0.0.1).
        EMULATOR_ENV: emulator.host,
    }
    container = f"matta-mlflow-server-test-{uuid.uuid4().hex[:8]}"
    # The pod's securityContext: its uid (the image's USER), read-only root, /tmp an emptyDir, no capabilities,
    # no privilege escalation. Host network: PostgreSQL and the emulator listen on the host's 127.0.0.1 only.
    engine.run("run", "--detach", "--name", container, "--network", "host", "--read-only", "--tmpfs", "/tmp",
               "--cap-drop", "all", "--security-opt", "no-new-privileges",
               "-v", f"{ini}:/etc/mlflow-auth/basic_auth.ini:ro",
               *(f"--env={key}={value}" for key, value in env.items()), server_image,
               "server", "--host=127.0.0.1", f"--port={port}", "--workers=1", "--app-name=basic-auth",
               "--serve-artifacts", timeout=60)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not healthy(uri):
            state = engine.run("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
            if state != "running" or time.monotonic() > deadline:
                logs = engine.run("logs", container, check=False)
                pytest.fail(f"the mlflow-server container is {state!r}, /health did not answer within "
                            f"{STARTUP_TIMEOUT_S} s; its log:\n{(logs.stdout + logs.stderr)[-4000:]}")
            time.sleep(0.5)
        yield RunningServer(uri, container, engine, postgres, emulator, bucket, admin_password)
    finally:
        engine.run("rm", "--force", "--time", "10", container, check=False, timeout=60)


def _get(server: RunningServer, path: str, *, password: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(server.uri + path)
    if password is not None:
        token = base64.b64encode(f"{ADMIN}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_runs_as_the_images_user_on_a_read_only_root_with_the_pinned_mlflow(server: RunningServer) -> None:
    # PID 1 is the server itself (ENTRYPOINT ["mlflow"]): its real uid is what runAsNonRoot/runAsUser see.
    done = server.engine.run("exec", server.container, "sh", "-c",
                             "awk '/^Uid:/ {print $2}' /proc/1/status; "
                             "touch /opt/venv/x 2>/dev/null && echo writable || echo read-only; "
                             "touch /tmp/x && echo tmp-writable")
    assert done.stdout.split() == [str(UID), "read-only", "tmp-writable"]
    assert _get(server, "/version", password=server.admin_password) == (200, MLFLOW_VERSION.encode())
    labels = json.loads(server.engine.run("image", "inspect", "--format", "{{json .Config.Labels}}",
                                          TEST_IMAGE).stdout)
    assert labels["org.opencontainers.image.version"] == MLFLOW_VERSION


def test_basic_auth_guards_the_api(server: RunningServer) -> None:
    assert _get(server, "/health")[0] == 200  # the probes' path answers without credentials
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _get(server, path)[0] == 401
    assert _get(server, path, password="wrong")[0] == 401
    assert _get(server, path, password=server.admin_password)[0] == 200


def test_tracking_and_registry_land_in_postgres_and_the_bucket(server: RunningServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.admin_password)
    mlflow.set_tracking_uri(server.uri)
    client = MlflowClient(server.uri)
    experiment_id = mlflow.create_experiment(f"mlflow-server-image-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("accuracy", 0.875, step=3)
        mlflow.log_text("weights and a card\n", "model/README.txt")
    run_id = run.info.run_id
    model = f"mlflow-server-image-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    version = client.create_model_version(model, f"{run.info.artifact_uri}/model", run_id=run_id)
    client.set_registered_model_alias(model, "champion", version.version)

    # Read back through the server.
    fetched = client.get_run(run_id)
    assert fetched.info.status == "FINISHED" and fetched.data.metrics == {"accuracy": 0.875}
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server, not written by clients
    assert mlflow.artifacts.load_text(f"{run.info.artifact_uri}/model/README.txt") == "weights and a card\n"
    champion = client.get_model_version_by_alias(model, "champion")
    assert (champion.version, champion.run_id) == (str(version.version), run_id)

    # The rows are in PostgreSQL...
    connection = psycopg2.connect(**server.postgres.connect_kwargs(), connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, experiment_id FROM runs WHERE run_uuid = %s", (run_id,))
            assert cursor.fetchall() == [("FINISHED", int(experiment_id))]
            cursor.execute("SELECT key, value, step FROM metrics WHERE run_uuid = %s", (run_id,))
            assert cursor.fetchall() == [("accuracy", 0.875, 3)]
            cursor.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (model,))
            assert cursor.fetchall() == [("champion", int(version.version))]
    finally:
        connection.close()
    # ...and the artifact in the bucket, under the server's --artifacts-destination.
    gcs = storage.Client(project="test", credentials=AnonymousCredentials(),
                         client_options={"api_endpoint": server.emulator.host})
    names = [blob.name for blob in gcs.list_blobs(server.bucket, prefix="artifacts/")]
    expected = f"artifacts/{experiment_id}/{run_id}/artifacts/model/README.txt"
    assert expected in names, names
    assert gcs.bucket(server.bucket).blob(expected).download_as_bytes() == b"weights and a card\n"
