"""`matta submit` to a KFP cluster without one: the real kfp client talks to a stub KFP API on localhost that
records every request; the tests read the exact run the cluster would receive. Nothing reaches MLflow: the pipeline
opens its own parent run on the cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.config import PipelineConfig
from matta_core.image import IMAGE_ENV
from pipelines.cluster import cluster_arguments
from tests.json_stub import JsonStubHandler, serving
from tests.kfp.helpers import closed_port

IMAGE = "europe-docker.pkg.dev/proj/repo/matta@sha256:" + "ab" * 32
ROOT = "gs://matta-bucket/pipeline-root"


class StubKfp(JsonStubHandler):
    """The KFP v2beta1 endpoints a submission calls; records method, path, query, Authorization and body."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def _record(self) -> dict[str, Any]:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        call = {"method": self.command, "path": url.path, "query": parse_qs(url.query),
                "auth": self.headers.get("Authorization"),
                "body": json.loads(self.rfile.read(length)) if length else None}
        self.calls.append(call)
        return call

    def do_GET(self) -> None:
        call = self._record()
        if call["path"].endswith("/apis/v2beta1/healthz"):
            self._reply({"multi_user": True})
        elif call["path"].endswith("/apis/v2beta1/experiments"):
            self._reply({"experiments": [{"experiment_id": "exp-7", "display_name": "matta-exp"}], "total_size": 1})
        else:
            self._reply({})

    def do_POST(self) -> None:
        call = self._record()
        if call["path"].endswith("/apis/v2beta1/runs"):
            self._reply({**call["body"], "run_id": "run-1", "state": "PENDING"})
        else:
            self._reply({})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_kfp() -> Iterator[str]:
    StubKfp.calls = []
    with serving(StubKfp) as url:
        yield url


def cluster_config(tmp_path: Path, **cluster: Any) -> Path:
    """A config a cluster can run (no local paths, a gs:// pipeline root)."""
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"name": "matta-kfp", "cache_dir": "gs://matta-bucket/cache",
                                    "cluster": {"pipeline_root": ROOT, **cluster}}))
    return path


def posted_runs() -> list[dict[str, Any]]:
    return [c for c in StubKfp.calls if c["method"] == "POST" and c["path"].endswith("/apis/v2beta1/runs")]


@pytest.mark.parametrize("from_env", [False, True], ids=["--image", "MATTA_IMAGE"])
def test_submit_sends_the_cluster_run(tmp_path: Path, stub_kfp: str, monkeypatch: pytest.MonkeyPatch,
                                      from_env: bool) -> None:
    # An MLflow server that does not answer: submit must not need it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    if from_env:
        monkeypatch.setenv(IMAGE_ENV, IMAGE)
    else:
        monkeypatch.delenv(IMAGE_ENV, raising=False)
    config = cluster_config(tmp_path)
    result = CliRunner().invoke(app, [
        "submit", "--config", str(config), "--host", stub_kfp, "--namespace", "team-a", "--token", "tok-1",
        "--experiment", "matta-exp", "--run-name", "nightly-1", "--no-cache",
        *([] if from_env else ["--image", IMAGE])])
    assert result.exit_code == 0, result.output
    assert "submitted: KFP run run-1" in result.output and f"{stub_kfp}/#/runs/details/run-1" in result.output

    [run] = posted_runs()
    body = run["body"]
    assert run["auth"] == "Bearer tok-1"
    assert body["display_name"] == "nightly-1" and body["experiment_id"] == "exp-7"
    assert body["runtime_config"]["pipeline_root"] == ROOT
    assert body["runtime_config"]["parameters"] == json.loads(json.dumps(
        cluster_arguments(PipelineConfig.load(config))))
    # The package's two documents, as the client sends them: the pipeline, and its Kubernetes settings.
    spec, platform = body["pipeline_spec"]["pipeline_spec"], body["pipeline_spec"]["platform_spec"]
    assert "kubernetes" in platform["platforms"]
    executors = spec["deploymentSpec"]["executors"]
    assert executors and {e["container"]["image"] for e in executors.values()} == {IMAGE}
    tasks = [t for c in [spec["root"], *spec["components"].values()] if "dag" in c for t in c["dag"]["tasks"].values()]
    assert tasks and all(not t.get("cachingOptions", {}).get("enableCache", False) for t in tasks)
    # The experiment is looked up in the user's profile namespace (multi-user Kubeflow).
    lookups = [c for c in StubKfp.calls if c["method"] == "GET" and c["path"].endswith("/experiments")]
    assert lookups and all(c["query"].get("namespace") == ["team-a"] for c in lookups)
    assert all(c["auth"] == "Bearer tok-1" for c in StubKfp.calls)


def test_submit_reaches_kfp_through_the_kube_context(tmp_path: Path, stub_kfp: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No --host: kfp goes through the Kubernetes API of the kube config's context (here the stub stands in for
    the API server's service proxy)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "c", "cluster": {"server": stub_kfp}}],
        "users": [{"name": "u", "user": {"token": "kube-token"}}],
        "contexts": [{"name": "gke-ml", "context": {"cluster": "c", "user": "u"}},
                     {"name": "other", "context": {"cluster": "nowhere", "user": "u"}}]}))
    from kubernetes.config import kube_config

    # kubernetes reads $KUBECONFIG once, at import: point both at the file.
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    result = CliRunner().invoke(app, ["submit", "--config", str(cluster_config(tmp_path, image=IMAGE)),
                                      "--kube-context", "gke-ml"])
    assert result.exit_code == 0, result.output
    [run] = posted_runs()
    # The context's server and its user's credentials: the kube config reached the API, not a default host.
    assert run["path"].endswith("/apis/v2beta1/runs") and run["auth"] == "Bearer kube-token"
    assert run["body"]["runtime_config"]["pipeline_root"] == ROOT


def test_submit_refuses_a_laptop_config_before_contacting_anything(tmp_path: Path, stub_kfp: str) -> None:
    laptop = tmp_path / "laptop.yaml"
    laptop.write_text(yaml.safe_dump({"name": "x", "cluster": {"image": IMAGE}}))
    result = CliRunner().invoke(app, ["submit", "--config", str(laptop), "--host", stub_kfp])
    assert result.exit_code == 2
    assert "cluster.pipeline_root" in result.output and "cache_dir" in result.output
    result = CliRunner().invoke(app, ["submit", "--config", str(cluster_config(tmp_path)), "--host", stub_kfp,
                                      "--image", "matta:latest"])
    assert result.exit_code == 2 and "matta:latest" in result.output
    result = CliRunner().invoke(app, ["submit", "--config", str(cluster_config(tmp_path, image=IMAGE)),
                                      "--host", stub_kfp, "--project", "p"])
    assert result.exit_code == 2 and "--project do(es) not apply to --backend kfp" in result.output
    assert StubKfp.calls == []


def test_submit_says_which_host_does_not_answer(tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    result = CliRunner().invoke(app, ["submit", "--config", str(cluster_config(tmp_path, image=IMAGE)),
                                      "--host", host])
    assert result.exit_code == 2
    assert f"the KFP API at {host} is not reachable" in result.output and "--host" in result.output


def test_submit_with_cache_never_caches_the_side_effects(tmp_path: Path, stub_kfp: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """--cache leaves the compiled flags alone: the release and the first and last tasks stay uncached (kfp's
    client would turn every root task on)."""
    monkeypatch.setenv(IMAGE_ENV, IMAGE)
    result = CliRunner().invoke(app, ["submit", "--config", str(cluster_config(tmp_path)), "--host", stub_kfp,
                                      "--cache"])
    assert result.exit_code == 0, result.output
    [run] = posted_runs()
    spec = run["body"]["pipeline_spec"]["pipeline_spec"]
    tasks = {n: t for c in [spec["root"], *spec["components"].values()] if "dag" in c
             for n, t in c["dag"]["tasks"].items() if not n.startswith("exit-handler")}
    cached = {n for n, t in tasks.items() if t.get("cachingOptions", {}).get("enableCache", False)}
    assert {"start-run", "write-report", "release-models", "end-run"}.isdisjoint(cached)
    assert {"prepare-data", "train-models", "extract-and-evaluate"} <= cached
