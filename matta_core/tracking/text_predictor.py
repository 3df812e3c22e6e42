"""Texts in, labels and class probabilities out, for a saved standalone model: what the MLflow pyfunc serves.

Kept apart from `pyfunc_model.py` (which MLflow executes as a script) so the output columns have one
definition that both the pyfunc and the logged signature use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matta_core.extraction import ExtractedConfig, load_extracted
from matta_core.features import HashedNgramFeaturizer

#: The artifact name under which the logged pyfunc finds the model folder.
MODEL_DIR_ARTIFACT = "model_dir"
TEXT_COLUMN = "text"
LABEL_COLUMN = "label"
PROBABILITY_COLUMN = "probability"
CLASS_PROBABILITY_PREFIX = "probability_"
#: Rows featurised and scored at once: bounds memory for large inputs without slowing small ones.
CHUNK_ROWS = 4096


def class_names(config: ExtractedConfig) -> list[str]:
    """The label names of a model, or ``"0".."k-1"`` when it was saved without names."""
    return list(config.labels) if config.labels else [str(i) for i in range(config.num_classes)]


def output_columns(config: ExtractedConfig) -> list[str]:
    """``label``, ``probability`` (of that label), then ``probability_<name>`` for every class, in class order."""
    names = class_names(config)
    columns = [LABEL_COLUMN, PROBABILITY_COLUMN, *(CLASS_PROBABILITY_PREFIX + name for name in names)]
    if len(set(columns)) != len(columns):
        raise ValueError(f"label names {names} give duplicate output columns; labels must be unique")
    return columns


class TextPredictor:
    """A standalone model and its featuriser, loaded from a ``model.safetensors`` + ``config.json`` folder."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model, self.config = load_extracted(model_dir)
        if self.config.num_dense_features:
            raise ValueError(
                f"{model_dir}: model takes {self.config.num_dense_features} dense feature columns; the text-only "
                "predictor serves models with num_dense_features=0"
            )
        self.featurizer = HashedNgramFeaturizer(self.config.features)
        self.names = class_names(self.config)
        self.columns = output_columns(self.config)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, num_classes] softmax probabilities."""
        parts = []
        for start in range(0, len(texts), CHUNK_ROWS):
            chunk = list(texts[start:start + CHUNK_ROWS])
            batch = self.featurizer.transform(chunk).batch(np.arange(len(chunk)))
            with torch.inference_mode():
                logits = self.model(batch.ids, batch.offsets, batch.counts, batch.dense)
            parts.append(torch.softmax(logits, dim=-1).numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self.config.num_classes), dtype=np.float32)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A frame with a ``text`` column -> a frame with `self.columns` (same row order and index)."""
        if TEXT_COLUMN not in frame.columns:
            raise ValueError(f"input needs a {TEXT_COLUMN!r} column; got columns {list(frame.columns)}")
        texts = frame[TEXT_COLUMN]
        missing = texts.isna()
        if missing.any():
            rows = list(frame.index[missing][:5])
            raise ValueError(f"{TEXT_COLUMN!r} is missing (None/NaN) in rows {rows}; send an empty string instead")
        probs = self.probabilities([str(t) for t in texts])
        top = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
        out = {
            LABEL_COLUMN: [self.names[i] for i in top],
            PROBABILITY_COLUMN: probs[np.arange(len(top)), top],
        }
        for i, column in enumerate(self.columns[2:]):
            out[column] = probs[:, i]
        return pd.DataFrame(out, index=frame.index)
