"""Texts in, labels and class probabilities out, for a saved standalone model: what the MLflow pyfunc serves.

Defined in `matta_core.serving.matta_text_classifier` (the file every logged model carries, which the pyfunc
loads); re-exported here for matta's own callers, so the output columns have one definition that the pyfunc, the
logged signature and the release gate share.
"""

from __future__ import annotations

from matta_core.serving.matta_text_classifier import (
    CHUNK_ROWS,
    CLASS_PROBABILITY_PREFIX,
    LABEL_COLUMN,
    PROBABILITY_COLUMN,
    TEXT_COLUMN,
    TextPredictor,
    class_names,
    output_columns,
)

__all__ = [
    "CHUNK_ROWS",
    "CLASS_PROBABILITY_PREFIX",
    "LABEL_COLUMN",
    "PROBABILITY_COLUMN",
    "TEXT_COLUMN",
    "TextPredictor",
    "class_names",
    "output_columns",
]
