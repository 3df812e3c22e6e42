"""A standalone model logged as a pyfunc from code reloads in a clean process without pickle, and predicts the same."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from matta_core.families.classifier.extract import load_extracted
from matta_core.features import HashedNgramFeaturizer
from matta_core.tracking import log_standalone_model, pipeline_run, step_run
from matta_core.tracking.models import runtime_requirements
from matta_core.tracking.text_predictor import TextPredictor
from tests.mlflow_server import MLflowServer
from tests.tiny_student import write_tiny_student

LABELS = ("card_arrival", "top_up", "fees", "pin")
TEXTS = [
    "I still have not received my new card",
    "How do I top up my account with a cheque?",
    "why was I charged a fee for my transfer",
    "Can I change my PIN at an ATM?",
    "where is my card, it has been two weeks",
    "top up failed twice this morning",
    "",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny extracted Student (8 wide, 4 classes) with weights large enough that predictions differ by text."""
    return write_tiny_student(tmp_path_factory.mktemp("student") / "student-8", 4, LABELS)


def reference_probabilities(model_dir: Path, texts: list[str]) -> np.ndarray:
    """The standalone model run directly, as the brief's serving path describes (no tracking code involved)."""
    model, config = load_extracted(model_dir)
    batch = HashedNgramFeaturizer(config.features).transform(texts).batch(list(range(len(texts))))
    with torch.no_grad():
        return torch.softmax(model(batch.ids, batch.offsets, batch.counts, batch.dense), dim=-1).numpy()


def test_logged_model_reloads_without_pickle_and_predicts_the_same(
    model_dir: Path, sqlite_uri: str, mlflow_server: MLflowServer, experiment_name: str, script_dir: Path,
    tmp_path: Path,
) -> None:
    logged = []
    for uri, registered in ((sqlite_uri, None), (mlflow_server.uri, f"student-{experiment_name}")):
        with pipeline_run(uri, experiment_name, "release") as parent, step_run(parent.run_id, "register"):
            model_uri = log_standalone_model(model_dir, "student-8", input_example_texts=TEXTS[:2],
                                             registered_model_name=registered)
        logged.append({"tracking_uri": uri, "model_uri": model_uri})
    # Loading by registry name works too (the server returns versions as strings).
    logged.append({"tracking_uri": mlflow_server.uri, "model_uri": f"models:/student-{experiment_name}/1"})

    # A negative control: a pickled pyfunc in the same store must be refused under the same setting.
    class Pickled(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # type: ignore[no-untyped-def]
            return model_input

    mlflow.set_tracking_uri(sqlite_uri)
    pickled = mlflow.pyfunc.log_model(name="pickled", python_model=Pickled(), pip_requirements=["mlflow"])
    mlflow.set_tracking_uri(None)

    request, result = tmp_path / "request.json", tmp_path / "result.json"
    request.write_text(json.dumps({"texts": TEXTS, "models": logged,
                                   "pickled": {"tracking_uri": sqlite_uri, "model_uri": pickled.model_uri}}))
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, str(script_dir / "load_model.py"), str(request), str(result)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(result.read_text())

    assert "Deserializing model using pickle is disallowed" in answer["pickled_error"]
    expected = reference_probabilities(model_dir, TEXTS)
    expected_labels = [LABELS[i] for i in expected.argmax(axis=1)]
    assert len(set(expected_labels)) > 1, "the tiny model should not predict one class for everything"
    for prediction in answer["predictions"]:
        assert list(prediction) == ["label", "probability", *(f"probability_{name}" for name in LABELS)]
        assert prediction["label"] == expected_labels
        np.testing.assert_allclose(prediction["probability"], expected.max(axis=1), rtol=1e-6)
        probs = np.array([prediction[f"probability_{name}"] for name in LABELS]).T
        np.testing.assert_allclose(probs, expected, rtol=1e-6, atol=1e-7)


def test_logged_model_has_signature_example_and_no_pickle(model_dir: Path, sqlite_uri: str,
                                                          experiment_name: str, tmp_path: Path) -> None:
    with pipeline_run(sqlite_uri, experiment_name, "release") as run:
        model_uri = log_standalone_model(model_dir, "student-8", input_example_texts=["card lost", "top up"])
    mlflow.set_tracking_uri(sqlite_uri)  # pipeline_run restored the previous (unset) URI on exit
    info = mlflow.models.get_model_info(model_uri)
    assert info.run_id == run.run_id
    assert info.signature.inputs.to_dict() == [{"type": "string", "name": "text", "required": True}]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == [
        "label", "probability", *(f"probability_{name}" for name in LABELS)
    ]
    assert info.metadata["labels"] == list(LABELS) and info.metadata["hidden_widths"] == [8]
    files = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "download"))
    names = {p.relative_to(files).as_posix() for p in Path(files).rglob("*") if p.is_file()}
    assert {"pyfunc_model.py", "input_example.json", "artifacts/student-8/model.safetensors",
            "artifacts/student-8/config.json", "artifacts/matta_text_classifier.py", "requirements.txt"} <= names
    assert not [n for n in names if n.endswith((".pkl", ".pickle"))]
    example = json.loads((Path(files) / "input_example.json").read_text())
    assert example["columns"] == ["text"] and example["data"] == [["card lost"], ["top up"]]
    requirements = (Path(files) / "requirements.txt").read_text().split()
    assert "torch==2.13.0" in requirements and "mlflow-skinny==3.17.2" in requirements
    assert not [r for r in requirements if r.startswith("matta") or "+" in r], requirements


def test_predictor_rejects_bad_input(model_dir: Path) -> None:
    predictor = TextPredictor(model_dir)
    with pytest.raises(ValueError, match="needs a 'text' column; got columns \\['query'\\]"):
        predictor.predict(pd.DataFrame({"query": ["x"]}))
    with pytest.raises(ValueError, match="missing \\(None/NaN\\) in rows \\[1\\]"):
        predictor.predict(pd.DataFrame({"text": ["x", None]}))
    assert len(predictor.predict(pd.DataFrame({"text": []}))) == 0


def test_not_a_saved_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a saved matta model"):
        log_standalone_model(tmp_path, "x", input_example_texts=["a"])


def test_runtime_requirements_are_pinned_without_local_tags() -> None:
    pins = dict(line.split("==") for line in runtime_requirements())
    assert set(pins) == {"mlflow-skinny", "torch", "safetensors", "numpy", "pandas"}
    assert pins["torch"] == torch.__version__.split("+")[0]
    assert pins["mlflow-skinny"] == mlflow.__version__


def test_pyfunc_script_reads_the_artifacts_the_logger_writes() -> None:
    """`pyfunc_model.py` cannot import matta, so it repeats the artifact names: they must agree."""
    from matta_core.tracking import models

    tree = ast.parse(models.PYFUNC_MODEL_FILE.read_text())
    assigned = {node.targets[0].id: node.value.value for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)}
    assert assigned["MODEL_DIR_ARTIFACT"] == models.MODEL_DIR_ARTIFACT
    assert assigned["CODE_ARTIFACT"] == models.CODE_ARTIFACT
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert imported <= {"__future__", "hashlib", "importlib", "sys", "pathlib", "types", "typing", "mlflow",
                        "pandas"}, imported
