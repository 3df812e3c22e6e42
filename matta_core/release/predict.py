"""Predicted label names of a model on given texts: from a saved model folder, or from the registry.

The candidate is read from its folder (what the run just wrote); the champion from the registry through the
MLflow pyfunc, i.e. the exact path a server takes. Both give label *names*, compared with `EvalRows.labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def labels_from_dir(model_dir: str | Path, texts: Sequence[str]) -> list[str]:
    """Predicted label names of the saved standalone model in `model_dir`."""
    from matta_core.tracking.text_predictor import TextPredictor

    predictor = TextPredictor(model_dir)
    probs = predictor.probabilities(list(texts))
    return [predictor.names[i] for i in probs.argmax(axis=1)] if len(probs) else []


def labels_from_registry(model_uri: str, texts: Sequence[str], tracking_uri: str) -> list[str]:
    """Predicted label names of the logged pyfunc at `model_uri` (``models:/name/3``), loaded from `tracking_uri`."""
    import mlflow
    import pandas as pd

    from matta_core.tracking.text_predictor import LABEL_COLUMN, TEXT_COLUMN

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri)
    frame = model.predict(pd.DataFrame({TEXT_COLUMN: list(texts)}))
    return [str(label) for label in frame[LABEL_COLUMN]]


def correctness(predicted: Sequence[str], gold: Sequence[str]) -> np.ndarray:
    """Per-row 0/1 correctness (bool array)."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} rows")
    return np.array([p == g for p, g in zip(predicted, gold, strict=True)], dtype=bool)
