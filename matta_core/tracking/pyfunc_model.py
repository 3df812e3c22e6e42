"""The MLflow pyfunc of a standalone matta model, logged as *code* (MLflow "models from code").

MLflow copies this file into the logged model and executes it at load time; the weights travel as the
``model_dir`` artifact (safetensors + JSON). Nothing is pickled, so the model loads with
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``. Loading needs matta installed (the project image has it).
Not imported by the library: executing it registers the model with `mlflow.models.set_model`.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from matta_core.tracking.text_predictor import MODEL_DIR_ARTIFACT, TEXT_COLUMN, TextPredictor


class StandaloneTextClassifier(PythonModel):
    """DataFrame with a ``text`` column -> DataFrame with ``label``, ``probability``, ``probability_<label>``."""

    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = TextPredictor(context.artifacts[MODEL_DIR_ARTIFACT])

    # The pd.DataFrame hint keeps MLflow from warning about missing type hints; the signature is set explicitly.
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame({TEXT_COLUMN: list(model_input)})
        return self.predictor.predict(model_input)


mlflow.models.set_model(StandaloneTextClassifier())
