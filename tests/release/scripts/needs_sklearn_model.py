"""A pyfunc (models from code) that imports scikit-learn, which its logged requirements do not name: it works where
it was logged and fails on a clean host. The loadability check must reject it and say which package is missing.
Logged by tests/release/test_load_check.py; never imported.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
import sklearn  # noqa: F401  (deliberately not among the logged requirements)
from mlflow.pyfunc import PythonModel, PythonModelContext


class NeedsSklearn(PythonModel):
    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        return pd.DataFrame({"label": ["x"] * len(model_input)})


mlflow.models.set_model(NeedsSklearn())
