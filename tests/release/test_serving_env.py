"""A registered model serves from a fresh virtual environment built from its logged requirements alone.

The release step gates, logs, registers and proposes a real tiny model as ``@challenger`` on the real MLflow
server. Then, as an A/B system would: read ``requirements.txt`` from the logged model, let pip build a fresh
virtual environment from it (pip's own configuration picks the index: nothing is passed, nothing of matta is
installed), and there load ``models:/<name>@challenger`` over HTTP and serve it with ``mlflow models serve``. Both
must give exactly the predictions of the extracted model folder.

The environment is cached by the requirements' hash under the session's tmp folder (or
``$MATTA_LOAD_CHECK_VENV_CACHE`` when set): pip installing torch from a local wheel takes about a minute.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pytest

from matta_core.release.load_check import VENV_CACHE_ENV, check_loadable, ensure_venv, read_requirements
from matta_core.release.step import release_step
from matta_core.tracking.models import runtime_requirements
from matta_core.tracking.text_predictor import TextPredictor
from tests.mlflow_server import MLflowServer
from tests.release.conftest import TinyModels
from tests.release.tiny import LABELS, SIZE_CLASSES

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / "scripts"
LINEAGE = {"data_content_hash": "e" * 64, "teacher_cache_key": "f" * 64, "code_version": "0.1.0+test"}


@pytest.fixture(scope="session")
def venv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(os.environ.get(VENV_CACHE_ENV) or tmp_path_factory.mktemp("venv-cache"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_and_predict(python: Path, model_uri: str, tracking_uri: str, texts: list[str], log: Path) -> dict:
    """``mlflow models serve`` in the venv (its bin first on PATH, as when activated); POST the texts once."""
    port = _free_port()
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    with open(log, "wb") as out:
        server = subprocess.Popen([str(python), "-I", "-m", "mlflow", "models", "serve", "-m", model_uri,
                                   "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker: their own process group
        server.wait(timeout=30)


def test_challenger_loads_and_serves_from_its_requirements_alone(
    mlflow_server: MLflowServer, tiny_models: TinyModels, venv_cache: Path, tmp_path: Path,
) -> None:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    prefix = f"serve{uuid.uuid4().hex[:6]}"
    config = {"model_prefix": prefix, "size_classes": [c.model_dump(exclude_none=True) for c in SIZE_CLASSES],
              "gate": {"floors": {"accuracy": 0.3}}}
    run = tiny_models.runs["medium"]
    decisions = release_step([*run.records, tiny_models.baseline_record], run.model_dirs, tiny_models.baseline_dir,
                             config, mlflow_server.uri, "kfp-serve-1", LINEAGE, test_rows=tiny_models.rows,
                             out_dir=tmp_path / "release")
    decision = next(d for d in decisions if d.size_class == "xs")
    assert decision.passed and decision.challenger_set, decision.to_dict()
    model_uri = f"models:/{decision.registered_model}@challenger"
    timings["release_step_s"] = time.perf_counter() - started

    # The requirements as the registry serves them: public pins only.
    mlflow.set_tracking_uri(mlflow_server.uri)
    try:
        requirements = read_requirements(Path(mlflow.pyfunc.get_model_dependencies(model_uri)))
    finally:
        mlflow.set_tracking_uri(None)
    assert requirements == runtime_requirements()
    assert all("==" in r and "+" not in r and not r.lower().startswith("matta") for r in requirements), requirements

    started = time.perf_counter()
    python = ensure_venv(requirements, venv_cache)
    timings["venv_s"] = time.perf_counter() - started
    no_matta = subprocess.run([str(python), "-I", "-c", "import matta_core"], capture_output=True, text=True,
                              cwd=tmp_path)
    assert no_matta.returncode != 0 and "No module named 'matta_core'" in no_matta.stderr

    texts = list(tiny_models.rows.texts)  # 160 rows, 40 per intent
    predictor = TextPredictor(decision.candidate_model_dir)
    expected = predictor.probabilities(texts)
    expected_labels = [predictor.names[i] for i in expected.argmax(axis=1)]
    assert len(set(expected_labels)) > 1

    def assert_same(columns: dict) -> None:
        assert columns["label"] == expected_labels
        probabilities = np.array([columns[f"probability_{name}"] for name in LABELS]).T
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)

    # Load by alias over HTTP in the fresh venv, pickle refused.
    started = time.perf_counter()
    request, result = tmp_path / "request.json", tmp_path / "result.json"
    request.write_text(json.dumps({"tracking_uri": mlflow_server.uri, "model_uri": model_uri, "texts": texts}))
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([str(python), "-I", str(SCRIPTS / "serve_from_registry.py"), str(request), str(result)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(result.read_text())
    assert not loaded["matta_core_found"] and loaded["mlflow_distributions"] == ["mlflow-skinny"]
    assert_same(loaded["predictions"])
    timings["load_by_alias_s"] = time.perf_counter() - started

    # `mlflow models serve` from the same venv answers /invocations with the same predictions.
    started = time.perf_counter()
    served = _serve_and_predict(python, model_uri, mlflow_server.uri, texts, tmp_path / "serve.log")
    assert_same({key: [row[key] for row in served["predictions"]] for key in served["predictions"][0]})
    timings["models_serve_s"] = time.perf_counter() - started

    # The gate's venv mode reuses the cached environment and agrees.
    started = time.perf_counter()
    checked = check_loadable([model_uri], mlflow_server.uri, texts[::20], environment="venv", venv_cache_dir=venv_cache)
    assert checked[model_uri].ok, checked[model_uri].error
    assert checked[model_uri].labels == expected_labels[::20]
    timings["check_loadable_venv_s"] = time.perf_counter() - started
    print("timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
