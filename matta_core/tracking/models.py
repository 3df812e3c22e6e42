"""Log an extracted standalone model to MLflow as a pickle-free pyfunc that loads without matta.

What a logged model holds, and why it serves anywhere:

- ``pyfunc_model.py`` (MLflow "models from code"): the pyfunc; imports mlflow and pandas only.
- ``artifacts/matta_text_classifier.py``: the servable code, a copy of `matta_core.serving.matta_text_classifier`
  (featuriser, network, loader, predictor; torch, numpy, safetensors, pandas). The pyfunc imports this copy, so
  the model keeps the exact code it was validated with, whatever matta version (if any) is installed where it loads.
- ``artifacts/<model folder>/``: ``model.safetensors`` + ``config.json``.
- ``requirements.txt``: `runtime_requirements`, exact pins of `RUNTIME_PACKAGES`, every one on PyPI (no ``matta``,
  no local build labels such as ``+cpu``). ``mlflow-skinny`` rather than ``mlflow``: the pyfunc loader, the
  ``models:/`` client for an HTTP tracking server and the ``mlflow models serve`` scoring server (FastAPI +
  uvicorn, both dependencies of skinny) are all in it, and it leaves out the tracking server, its database
  drivers and the scikit-learn/scipy/matplotlib stack; a host that has the full ``mlflow`` of the same version
  satisfies the pin too, since ``mlflow`` requires ``mlflow-skinny`` of its own version. Loading a registered
  model by a ``sqlite:`` tracking URI needs SQLAlchemy (the full ``mlflow``); over HTTP it does not.
  ``torch==X`` from PyPI is the CUDA build on Linux; a CPU host may install the CPU build of the same version
  (``X+cpu`` satisfies ``==X``).

The release gate (`matta_core.release.load_check`) loads every candidate in an environment made of these
requirements only, with matta unimportable, before it is registered.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from matta_core.serving import matta_text_classifier as servable
from matta_core.serving.matta_text_classifier import FORMAT, LABEL_COLUMN, TEXT_COLUMN, TextPredictor

PYFUNC_MODEL_FILE = Path(__file__).with_name("pyfunc_model.py")
SERVABLE_FILE = Path(servable.__file__)
#: Artifact names the pyfunc reads (the same constants are in `pyfunc_model.py`, which must not import matta).
MODEL_DIR_ARTIFACT = "model_dir"
CODE_ARTIFACT = "servable_code"
#: What the logged pyfunc and the servable file import at load time, as PyPI distributions; pinned to the
#: versions that logged (and validated) the model.
RUNTIME_PACKAGES = ("mlflow-skinny", "torch", "safetensors", "numpy", "pandas")


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
    model is code (`pyfunc_model.py` + the servable file) plus `model_dir` as an artifact: nothing is pickled and
    nothing needs matta (see the module docstring). Its signature is a ``text`` string column in and the
    `TextPredictor` columns out; `input_example_texts` become the input example, which MLflow also uses to check
    the model loads and predicts before logging. `registered_model_name` also registers it as a new version of
    that model. `pip_requirements` replaces `runtime_requirements` (for tests of the release gate).
    """
    model_dir = Path(model_dir)
    predictor = TextPredictor(model_dir)  # fails here, with the file named, if model_dir is not a saved model
    texts = [str(t) for t in input_example_texts]
    if not texts:
        raise ValueError("input_example_texts must hold at least one text")
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=str(PYFUNC_MODEL_FILE),
        artifacts={MODEL_DIR_ARTIFACT: str(model_dir), CODE_ARTIFACT: str(SERVABLE_FILE)},
        signature=standalone_signature(predictor.columns),
        input_example=pd.DataFrame({TEXT_COLUMN: texts}),
        # Explicit requirements: inferring them makes MLflow load the model in a subprocess (~6 s per model).
        pip_requirements=list(pip_requirements) if pip_requirements is not None else runtime_requirements(),
        registered_model_name=registered_model_name,
        metadata={
            "matta_format": FORMAT,
            "servable_code_sha256": hashlib.sha256(SERVABLE_FILE.read_bytes()).hexdigest(),
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
    """``package==version`` for `RUNTIME_PACKAGES` as installed here, local build labels (``+cpu``) dropped."""
    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError as exc:
            raise RuntimeError(f"{package} is not installed, so the version a logged model needs cannot be "
                               f"pinned; install it (a served model needs {list(RUNTIME_PACKAGES)})") from exc
        pins.append(f"{package}=={version.split('+')[0]}")
    return pins
