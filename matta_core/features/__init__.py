"""Turning raw text (and numeric columns) into the sparse tensors the classifier family reads."""

from matta_core.features.batch import FeatureBatch, SparseFeatures
from matta_core.features.hashing import FeaturizerConfig, HashedNgramFeaturizer, inverse_document_frequency

__all__ = [
    "FeatureBatch",
    "FeaturizerConfig",
    "HashedNgramFeaturizer",
    "SparseFeatures",
    "inverse_document_frequency",
]
