"""The whole pipeline inside the image (`matta run --runner docker`), against the same run as host processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import urllib.request
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from safetensors.torch import load_file

from matta_core.config import PipelineConfig
from matta_core.tracking.local_server import free_port, serving
from pipelines.local_runner import PipelineRunResult, run_pipeline
from tests.containers.conftest import BuiltImage
from tests.kfp.helpers import small_config, small_lm_config
from tests.mirror import MIRROR_DIR

pytestmark = [pytest.mark.slow, pytest.mark.container]
IMAGE_UID = 10001


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("teacher-cache")


def _accuracies(result: PipelineRunResult) -> dict[str, float]:
    report = json.loads((result.report_dir / "report.json").read_text())
    return {r["name"]: float(r["accuracy"]) for r in report["models"]} | {
        "teacher": float(report["teacher"]["test_accuracy"])}


def _wait_for_task(out: Path, task: str, run: Future, timeout: float) -> None:
    """Until the run into `out` (going on in another process) started `task`; fails if it ended first."""
    deadline = time.monotonic() + timeout
    while not any((out / "kfp").glob(f"matta-*/{task}")):
        if run.done():
            run.result()  # raises what the run raised
            pytest.fail(f"the run into {out} ended before it started {task}")
        assert time.monotonic() < deadline, f"the run into {out} did not start {task} within {timeout} s"
        time.sleep(1)


def _artifacts(result: PipelineRunResult) -> dict[str, Path]:
    [run_dir] = list(result.pipeline_root.glob("matta-*"))
    return {str(p.relative_to(run_dir)): p for p in run_dir.rglob("*") if p.is_file()}


@pytest.mark.timeout(1500)
def test_docker_runner_matches_the_subprocess_runner(image: BuiltImage, tmp_path: Path, shared_cache: Path) -> None:
    # A few hundred Banking77 rows: the comparison is of every arm and width, not of how well they learn.
    data = {"mirror_dir": str(MIRROR_DIR), "limit_train_rows": 400, "limit_test_rows": 200}
    docker_config = PipelineConfig.parse(small_config(tmp_path / "docker", shared_cache, data=data))
    host_config = PipelineConfig.parse(small_config(tmp_path / "subprocess", shared_cache, data=data))
    # The containers go first, on an empty Teacher cache: the real MiniLM Teacher runs inside the image. Once it
    # has filled the cache (the containers' training started), the same run as host processes goes on beside the
    # containers' remaining steps and the serving check below. Each run_pipeline has a process of its own
    # (kfp.local's settings are global to a process).
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        docker_run = pool.submit(run_pipeline, docker_config, runner="docker", image=image.name)
        _wait_for_task(Path(docker_config.output_dir), "train-models", docker_run, timeout=900)
        host_run = pool.submit(run_pipeline, host_config)
        in_containers = docker_run.result(timeout=900)

        # The registered @challenger serves from inside the image with MLflow's own scoring server, and answers a
        # real HTTP request exactly as the model loaded here does.
        passed = [d for d in in_containers.release_summary["classes"].values() if d["passed"]]
        assert passed
        model_uri = f"models:/{passed[0]['registered_model']}@challenger"
        texts = ["I lost my card", "how do I top up with apple pay?", "why was my transfer declined"]
        assert in_containers.tracking_uri is not None
        with serving(in_containers.tracking_uri, in_containers.output_dir / "mlartifacts",
                     tmp_path / "serve-server.log") as server:
            served = serve_in_image(image, model_uri, server.uri, texts, tmp_path)
            mlflow.set_tracking_uri(server.uri)
            expected = mlflow.pyfunc.load_model(model_uri).predict(pd.DataFrame({"text": texts}))
            mlflow.set_tracking_uri(None)
        assert [row["label"] for row in served] == list(expected["label"])
        as_processes = host_run.result(timeout=900)

    # Same seed, same code, same torch build: the same models to the last digit.
    docker_acc, host_acc = _accuracies(in_containers), _accuracies(as_processes)
    assert set(docker_acc) == set(host_acc) == {"ta-256", "96", "student-32", "kd-32", "ce_only-32", "teacher"}
    for name, value in host_acc.items():
        assert docker_acc[name] == pytest.approx(value, abs=1e-6), name
    docker_files, host_files = _artifacts(in_containers), _artifacts(as_processes)
    assert set(docker_files) == set(host_files)
    weights = sorted(name for name in host_files if name.endswith("model.safetensors"))
    assert len(weights) >= 5
    for name in weights:
        ours, theirs = load_file(docker_files[name]), load_file(host_files[name])
        assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours), name

    # The tasks ran as the image's non-root user, and what they wrote is readable by anyone on this machine.
    owners = {p.stat().st_uid for p in docker_files.values()}
    assert owners == {IMAGE_UID}
    assert all(os.stat(p).st_mode & 0o004 for p in docker_files.values())
    # Tracked through a temporary server in front of the run's own sqlite store, released like the host run.
    assert in_containers.tracking_uri and in_containers.tracking_uri.startswith("sqlite:///")
    docker_release, host_release = in_containers.release_summary, as_processes.release_summary
    assert docker_release["status"] == host_release["status"] == "gated"
    assert {c: d["candidate"] for c, d in docker_release["classes"].items()} == {
        c: d["candidate"] for c, d in host_release["classes"].items()}


def serve_in_image(image: BuiltImage, model_uri: str, tracking_uri: str, texts: list[str], tmp_path: Path) -> list:
    """``mlflow models serve --env-manager local`` in a container on the host network; POST once; stop it."""
    port = free_port()
    name = f"matta-serve-{port}"
    image.engine.run("run", "-d", "--name", name, "--network", "host", "--env", f"MLFLOW_TRACKING_URI={tracking_uri}",
                     "--env", "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false", image.name, "mlflow", "models", "serve",
                     "-m", model_uri, "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port))
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                logs = image.engine.run("logs", name, check=False)
                assert time.monotonic() < deadline, logs.stdout[-3000:] + logs.stderr[-3000:]
                time.sleep(1)
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return list(json.loads(response.read())["predictions"])
    finally:
        image.engine.run("rm", "-f", name, check=False)


@pytest.mark.timeout(1200)
def test_causal_lm_runs_in_the_image_with_the_real_smollm2_teacher(image: BuiltImage, tmp_path: Path) -> None:
    # 16 validation and 16 test passages instead of small_lm_config's 50 each: the real Teacher in the image on an
    # empty cache (about a second a passage on 2 cores) is most of this test's time. The 200 train passages stay:
    # 24 steps of 8 see each about once (fewer would be repeated, and the Students overfit past the uniform guess).
    data = {"source": "wiki_sents", "mirror_dir": str(MIRROR_DIR), "limit_train_rows": 200, "limit_test_rows": 16}
    config = PipelineConfig.parse(small_lm_config(tmp_path, tmp_path / "cache", data=data))
    result = run_pipeline(config, runner="docker", image=image.name)
    report = json.loads((result.report_dir / "report.json").read_text())
    assert report["task"] == "causal_lm"
    perplexities = {r["name"]: r["test_perplexity"] for r in report["models"]}
    assert len(perplexities) >= 3
    vocab = 49_152  # SmolLM2's: a uniform guess over it has this perplexity
    assert all(0 < p < vocab for p in perplexities.values()), perplexities
    assert report["teacher"]["test_perplexity"] < min(perplexities.values())
    assert result.release_summary.get("status") == "skipped"
