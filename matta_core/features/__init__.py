"""Turning raw text (and numeric columns) into the sparse tensors the classifier family reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from matta_core.lazy_exports import lazy_exports

# Exported names -> the module that defines them, imported on first use (`matta_core.lazy_exports`).
_EXPORTS = {
    "FeatureBatch": "matta_core.features.batch",
    "SparseFeatures": "matta_core.features.batch",
    "FeaturizerConfig": "matta_core.features.hashing",
    "HashedNgramFeaturizer": "matta_core.features.hashing",
    "inverse_document_frequency": "matta_core.features.hashing",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from matta_core.features.batch import FeatureBatch, SparseFeatures
    from matta_core.features.hashing import FeaturizerConfig, HashedNgramFeaturizer, inverse_document_frequency

__all__ = [
    "FeatureBatch",
    "FeaturizerConfig",
    "HashedNgramFeaturizer",
    "SparseFeatures",
    "inverse_document_frequency",
]
