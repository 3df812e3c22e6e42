"""Log an extracted standalone model to MLflow as a pickle-free pyfunc (models from code)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from matta_core.extraction import FORMAT
from matta_core.tracking.text_predictor import LABEL_COLUMN, MODEL_DIR_ARTIFACT, TEXT_COLUMN, TextPredictor

PYFUNC_MODEL_FILE = Path(__file__).with_name("pyfunc_model.py")
#: What the pyfunc imports at load time (matta itself included); pinned to the versions that logged it.
RUNTIME_PACKAGES = ("matta", "mlflow", "torch", "safetensors", "scikit-learn", "scipy", "numpy", "pandas")


def log_standalone_model(
    model_dir: str | Path,
    name: str,
    *,
    input_example_texts: Sequence[str],
    registered_model_name: str | None = None,
    pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Log the saved model in `model_dir` as pyfunc `name`; return its ``models:/m-...`` URI.

    Logged into the active run if there is one (inside `step_run`), else as a run-less MLflow LoggedModel. The
    model is code (`pyfunc_model.py`) plus `model_dir` as an artifact: nothing is pickled. Its signature is a
    ``text`` string column in and the `TextPredictor` columns out; `input_example_texts` become the input
    example, which MLflow also uses to check the model loads and predicts before logging.
    `registered_model_name` also registers it as a new version of that model.
    """
    model_dir = Path(model_dir)
    predictor = TextPredictor(model_dir)  # fails here, with the file named, if model_dir is not a saved model
    texts = [str(t) for t in input_example_texts]
    if not texts:
        raise ValueError("input_example_texts must hold at least one text")
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=str(PYFUNC_MODEL_FILE),
        artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
        signature=standalone_signature(predictor.columns),
        input_example=pd.DataFrame({TEXT_COLUMN: texts}),
        # Explicit requirements: inferring them makes MLflow load the model in a subprocess (~6 s per model).
        pip_requirements=list(pip_requirements) if pip_requirements is not None else runtime_requirements(),
        registered_model_name=registered_model_name,
        metadata={
            "matta_format": FORMAT,
            "hidden_widths": list(predictor.config.hidden_widths),
            "num_classes": predictor.config.num_classes,
            "labels": list(predictor.names),
            **(metadata or {}),
        },
    )
    return str(info.model_uri)


def standalone_signature(columns: Sequence[str]) -> ModelSignature:
    """Input: one required string column ``text``. Output: ``label`` (string), then float probability columns."""
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec("string", column) if column == LABEL_COLUMN else ColSpec("float", column) for column in columns
    ]
    return ModelSignature(inputs=Schema([ColSpec("string", TEXT_COLUMN)]), outputs=Schema(outputs))


def runtime_requirements() -> list[str]:
    """``package==version`` for `RUNTIME_PACKAGES` as installed here (local build tags like ``+cpu`` dropped)."""
    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue  # matta run from a source tree without being installed: nothing to pin
        pins.append(f"{package}=={version.split('+')[0]}")
    return pins
