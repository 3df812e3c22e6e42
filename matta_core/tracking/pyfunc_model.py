"""The MLflow pyfunc of a standalone matta model, logged as *code* (MLflow "models from code").

MLflow copies this file into the logged model and executes it at load time. It imports the standard library,
mlflow and pandas, never matta: the model's own code and weights travel as its artifacts. ``servable_code`` is the
copy of `matta_core/serving/matta_text_classifier.py` taken when the model was logged, ``model_dir`` the saved
folder (safetensors + JSON). `load_context` imports that copy by path, under a name made from its content hash
rather than as a top-level module on ``sys.path`` (what MLflow ``code_paths`` would do): a process that loads
``@champion`` and ``@challenger`` side by side gets each model's own code, even when different matta versions
logged them. Nothing is pickled, so the model loads with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``.

Not imported by the library: executing it registers the model with `mlflow.models.set_model`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

#: Artifact names; `matta_core.tracking.models` logs under the same names (a test checks that they agree).
MODEL_DIR_ARTIFACT = "model_dir"
CODE_ARTIFACT = "servable_code"


def import_servable(path: str) -> ModuleType:
    """The servable module in the file at `path`, executed once per distinct file content in a process."""
    name = f"matta_text_classifier_{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{path} is not an importable Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


class StandaloneTextClassifier(PythonModel):
    """DataFrame with a ``text`` column -> DataFrame with ``label``, ``probability``, ``probability_<label>``."""

    def load_context(self, context: PythonModelContext) -> None:
        servable = import_servable(context.artifacts[CODE_ARTIFACT])
        self.text_column = servable.TEXT_COLUMN
        self.predictor = servable.TextPredictor(context.artifacts[MODEL_DIR_ARTIFACT])

    # The pd.DataFrame hint keeps MLflow from warning about missing type hints; the signature is set explicitly.
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame({self.text_column: list(model_input)})
        return self.predictor.predict(model_input)


mlflow.models.set_model(StandaloneTextClassifier())
