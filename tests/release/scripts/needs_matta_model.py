"""A pyfunc (models from code) that imports matta at load time, as matta's own pyfunc did before its serving code
travelled with the model: its requirements can be clean and it still cannot load where matta is not installed.
The loadability check must reject it. Logged by tests/release/test_load_check.py; never imported.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from matta_core.tracking.text_predictor import TextPredictor


class NeedsMatta(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = TextPredictor(context.artifacts["model_dir"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.predictor.predict(model_input)


mlflow.models.set_model(NeedsMatta())
