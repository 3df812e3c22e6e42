"""Hashed word and character n-grams: a stateless featuriser that needs no vocabulary file.

Hashing means the featuriser is fully described by its config: an extracted model ships only its weights, its
IDF vector and this config. Word 1-2-grams carry meaning; character 3-5-grams (within word boundaries) make the
model robust to typos and inflections, which matter for short user queries such as banking intents.

The hashing itself lives in `matta_core.serving.matta_text_classifier`, the file every logged model carries, so
training and serving featurise with the same code; this module adds the training-side views (a scipy matrix,
`SparseFeatures`) and the IDF.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from matta_core.features.batch import SparseFeatures
from matta_core.serving import matta_text_classifier as servable
from matta_core.serving.matta_text_classifier import FeaturizerConfig

__all__ = ["FeaturizerConfig", "HashedNgramFeaturizer", "inverse_document_frequency"]


class HashedNgramFeaturizer(servable.HashedNgramFeaturizer):
    """Texts -> sparse n-gram counts over `num_buckets` hashed buckets (word and char n-grams share buckets)."""

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts per (text, bucket), float32, indices sorted within each row."""
        indptr, indices, counts = self.csr(list(texts))
        return sp.csr_matrix((counts, indices, indptr), shape=(len(indptr) - 1, self.config.num_buckets))

    def transform(self, texts: Sequence[str], dense: np.ndarray | None = None) -> SparseFeatures:
        """Texts (and optional dense numeric columns) -> `SparseFeatures` ready for batching."""
        return SparseFeatures(self.counts(texts), dense)


def inverse_document_frequency(features: SparseFeatures, num_buckets: int) -> np.ndarray:
    """Smoothed IDF per bucket, `log((1 + n) / (1 + df)) + 1` (scikit-learn's formula), from training features.

    Rare n-grams identify intents; frequent ones ("i", "my", "the") mostly add noise to a summed bag.
    """
    n_docs = len(features)
    df = np.bincount(features.indices.numpy(), minlength=num_buckets).astype(np.float64)
    return (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)
