"""`matta submit --backend vertex` and `matta schedule --backend vertex` without Google Cloud: the real
google-cloud-aiplatform SDK talks REST to a stub Vertex AI API on localhost (which records every request) and
checks the pipeline root's bucket on the real GCS emulator. The tests read the exact JSON Vertex would receive."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.config import PipelineConfig
from matta_core.release.cron import CronError
from pipelines.cluster import cluster_arguments
from pipelines.vertex import VertexError, parse_labels, vertex_cron
from tests.gcs_emulator import gcs_emulator  # noqa: F401  (registers the session fixture)
from tests.json_stub import JsonStubHandler

IMAGE = "europe-docker.pkg.dev/proj/repo/matta:0.1.0"
BUCKET = "matta-vertex-test"
PARENT = "/v1/projects/proj-1/locations/europe-west4"


class StubVertex(JsonStubHandler):
    """The Vertex AI REST endpoints a pipeline job, its experiment and a schedule need; records every request."""

    calls: ClassVar[list[tuple[str, str, dict[str, list[str]], Any]]] = []
    jobs: ClassVar[dict[str, Any]] = {}  # created pipeline jobs by resource name, as the SDK reads them back

    def _record(self) -> tuple[str, dict[str, list[str]], Any]:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((self.command, url.path, parse_qs(url.query), body))
        return url.path, parse_qs(url.query), body

    def do_GET(self) -> None:
        path, _, _ = self._record()
        name = path.removeprefix("/v1/")
        if name in self.jobs:
            self._reply(self.jobs[name])
        elif "/contexts/" in path:  # the experiment, already there
            self._reply({"name": name, "displayName": name.rsplit("/", 1)[1], "schemaTitle": "system.Experiment",
                         "schemaVersion": "0.0.1", "metadata": {"experiment_deleted": False}})
        else:
            self._reply({"name": name})

    def do_POST(self) -> None:
        path, query, body = self._record()
        if path.endswith("/pipelineJobs"):
            name = f"{path.removeprefix('/v1/')}/{query['pipelineJobId'][0]}"
            store = f"{PARENT.removeprefix('/v1/')}/metadataStores/default"
            self.jobs[name] = {**body, "name": name, "state": "PIPELINE_STATE_RUNNING", "jobDetail": {
                "pipelineRunContext": {"name": f"{store}/contexts/{query['pipelineJobId'][0]}",
                                       "schemaTitle": "system.PipelineRun"}}}
            self._reply(self.jobs[name])
        elif path.endswith("/schedules"):
            self._reply({**body, "name": f"{path.removeprefix('/v1/')}/sched-1", "state": "ACTIVE"})
        else:
            self._reply({})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_vertex(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stub API, and the SDK pointed at it: REST transport, anonymous credentials, a fresh global config.

    Before it submits, the SDK checks that the pipeline root's bucket belongs to the project: the bucket is the GCS
    emulator's, the project number comes from Cloud Resource Manager (gRPC to Google, no endpoint to point
    elsewhere), so that one call is answered here with the number the emulator's bucket reports.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.cloud.aiplatform import initializer
    from google.cloud.aiplatform.utils import resource_manager_utils

    def bucket_project_number(project_id: str, credentials: Any = None) -> str:
        bucket = storage.Client(project=project_id, credentials=AnonymousCredentials()).get_bucket(BUCKET)
        return str(bucket.project_number)

    monkeypatch.setattr(resource_manager_utils, "get_project_number", bucket_project_number)

    StubVertex.calls, StubVertex.jobs = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubVertex)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(initializer, "global_config", initializer._Config())
    initializer.global_config.init(api_endpoint=endpoint, api_transport="rest", credentials=AnonymousCredentials())
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cluster_config_file(tmp_path: Path, gcs_emulator: Any) -> Path:  # noqa: F811
    """A config a cluster can run, its pipeline root in a bucket of the GCS emulator."""
    bucket = gcs_emulator.make_bucket(BUCKET)
    config = {"name": "matta-vertex", "cache_dir": f"{bucket}/cache",
              "cluster": {"pipeline_root": f"{bucket}/root", "image": IMAGE}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _posts(suffix: str) -> list[tuple[dict[str, list[str]], Any]]:
    return [(query, body) for method, path, query, body in StubVertex.calls
            if method == "POST" and path.endswith(suffix)]


def test_submit_sends_vertex_the_cluster_pipeline(stub_vertex: str, cluster_config_file: Path) -> None:
    result = CliRunner().invoke(app, [
        "submit", "--backend", "vertex", "--config", str(cluster_config_file), "--project", "proj-1",
        "--region", "europe-west4", "--service-account", "runner@proj-1.iam.gserviceaccount.com",
        "--network", "projects/123/global/networks/vpc", "--label", "team=ml", "--label", "env=dev",
        "--run-name", "nightly-1", "--experiment", "matta-exp", "--no-cache"])
    assert result.exit_code == 0, result.output
    [(query, job)] = _posts(f"{PARENT}/pipelineJobs")
    job_id = query["pipelineJobId"][0]
    assert job_id.startswith("matta-")  # the pipeline's name and a timestamp: unique per run
    assert f"pipelineJobs/{job_id}" in result.output and "console.cloud.google.com" in result.output

    config = PipelineConfig.load(cluster_config_file)
    assert job["displayName"] == "nightly-1"
    assert job["labels"] == {"team": "ml", "env": "dev"}
    assert job["serviceAccount"] == "runner@proj-1.iam.gserviceaccount.com"
    assert job["network"] == "projects/123/global/networks/vpc"
    runtime = job["runtimeConfig"]
    assert runtime["gcsOutputDirectory"] == "gs://matta-vertex-test/root"
    assert runtime["parameterValues"] == json.loads(json.dumps(cluster_arguments(config)))
    spec = job["pipelineSpec"]
    assert spec["pipelineInfo"]["name"] == "matta"
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {IMAGE}
    # --no-cache reaches every task of the request.
    tasks = [t for c in [spec["root"], *spec["components"].values()] if "dag" in c for t in c["dag"]["tasks"].values()]
    assert tasks and all(not t.get("cachingOptions", {}).get("enableCache", False) for t in tasks)
    # The run is listed under the experiment: its context gets the run's context as a child.
    [(_, children)] = _posts("/contexts/matta-exp:addContextChildren")
    assert children == {"childContexts": [f"{PARENT[4:]}/metadataStores/default/contexts/{job_id}"]}


def test_schedule_sends_vertex_a_whole_minute_utc_cron(stub_vertex: str, cluster_config_file: Path) -> None:
    result = CliRunner().invoke(app, [
        "schedule", "--backend", "vertex", "--config", str(cluster_config_file), "--cron", "0 30 2 ? * MON-FRI",
        "--project", "proj-1", "--region", "europe-west4", "--name", "matta-nightly",
        "--service-account", "runner@proj-1.iam.gserviceaccount.com", "--label", "team=ml"])
    assert result.exit_code == 0, result.output
    assert f"{PARENT[4:]}/schedules/sched-1" in result.output
    assert not _posts("/pipelineJobs")  # a schedule starts no run now
    [(_, schedule)] = _posts(f"{PARENT}/schedules")
    assert schedule["displayName"] == "matta-nightly"
    assert schedule["cron"] == "TZ=UTC 30 2 * * MON-FRI"
    assert schedule["maxConcurrentRunCount"] == "1"  # int64: a JSON string in the REST mapping
    request = schedule["createPipelineJobRequest"]
    assert request["parent"] == PARENT[4:]
    job = request["pipelineJob"]
    assert job["serviceAccount"] == "runner@proj-1.iam.gserviceaccount.com" and job["labels"] == {"team": "ml"}
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://matta-vertex-test/root"
    config = PipelineConfig.load(cluster_config_file)
    assert job["runtimeConfig"]["parameterValues"] == json.loads(json.dumps(cluster_arguments(config)))


def test_cron_converts_to_vertex_only_on_whole_minutes() -> None:
    assert vertex_cron("0 0 2 * * *") == "TZ=UTC 0 2 * * *"
    assert vertex_cron("0 */15 * * * ?") == "TZ=UTC */15 * * * *"
    with pytest.raises(CronError, match=r"seconds field must be 0, got '30' \(e\.g\. '0 0 2 \* \* \*'\)"):
        vertex_cron("30 0 2 * * *")
    with pytest.raises(CronError, match="5 fields"):
        vertex_cron("0 2 * * *")


def test_labels_follow_vertex_rules() -> None:
    assert parse_labels(["team=ml", "cost-centre=r_and_d", "empty="]) == {
        "team": "ml", "cost-centre": "r_and_d", "empty": ""}
    for bad, why in [("Team=ml", "key must start"), ("1team=ml", "key must start"), ("team=ML", "value may hold"),
                     ("team", "key=value"), ("k=" + "v" * 64, "value may hold"), ("t=a", None)]:
        if why is None:
            continue
        with pytest.raises(VertexError, match=why):
            parse_labels([bad])
    with pytest.raises(VertexError, match="given twice"):
        parse_labels(["a=1", "a=2"])
    with pytest.raises(VertexError, match="set by Vertex AI itself"):
        parse_labels(["vertex-ai-pipelines-run-billing-id=1"])


@pytest.mark.parametrize(("args", "message"), [
    (["--region", "europe-west4"], "needs --project"),
    (["--project", "proj-1"], "needs --region"),
    (["--project", "proj-1", "--region", "europe-west4", "--label", "Bad=x"], "--label 'Bad=x'"),
])
def test_vertex_options_are_checked_before_anything_is_contacted(
        stub_vertex: str, cluster_config_file: Path, args: list[str], message: str) -> None:
    for command in (["submit"], ["schedule", "--cron", "0 0 2 * * *"]):
        result = CliRunner().invoke(app, [*command, "--backend", "vertex", "--config", str(cluster_config_file),
                                          *args])
        assert result.exit_code == 2 and message in result.output, result.output
    assert StubVertex.calls == []


def test_vertex_refuses_a_laptop_config_and_a_seconds_cron_before_contacting(
        stub_vertex: str, tmp_path: Path) -> None:
    laptop = tmp_path / "laptop.yaml"
    laptop.write_text(yaml.safe_dump({"name": "x", "cluster": {"image": IMAGE}}))
    where = ["--project", "proj-1", "--region", "europe-west4"]
    result = CliRunner().invoke(app, ["submit", "--backend", "vertex", "--config", str(laptop), *where])
    assert result.exit_code == 2 and "cluster.pipeline_root" in result.output and "cache_dir" in result.output
    result = CliRunner().invoke(app, ["schedule", "--backend", "vertex", "--config", str(laptop), *where,
                                      "--cron", "15 0 2 * * *"])
    assert result.exit_code == 2 and "seconds field must be 0" in result.output
    assert StubVertex.calls == []
