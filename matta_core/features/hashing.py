"""Hashed word and character n-grams: a stateless featuriser that needs no vocabulary file.

Hashing (scikit-learn's MurmurHash3 `HashingVectorizer`) means the featuriser is fully described by its config:
an extracted model ships only its weights, its IDF vector and this config, and serving needs nothing from matta.
Word 1-2-grams carry meaning; character 3-5-grams (within word boundaries) make the model robust to typos and
inflections, which matter for short user queries such as banking intents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from matta_core.features.batch import SparseFeatures


@dataclass(frozen=True)
class FeaturizerConfig:
    """How text becomes bucket ids. `num_buckets` is also the embedding table's row count."""

    num_buckets: int = 2**18
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    lowercase: bool = True

    def __post_init__(self) -> None:
        if self.num_buckets < 2:
            raise ValueError(f"num_buckets must be >= 2, got {self.num_buckets}")
        for name in ("word_ngrams", "char_ngrams"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high (0 disables), got {(lo, hi)}")
        object.__setattr__(self, "word_ngrams", tuple(self.word_ngrams))
        object.__setattr__(self, "char_ngrams", tuple(self.char_ngrams))

    def to_dict(self) -> dict:
        return asdict(self)


class HashedNgramFeaturizer:
    """Texts -> sparse n-gram counts over `num_buckets` hashed buckets (word and char n-grams share buckets)."""

    def __init__(self, config: FeaturizerConfig) -> None:
        self.config = config
        common = dict(n_features=config.num_buckets, alternate_sign=False, norm=None, lowercase=config.lowercase,
                      dtype=np.float32)
        self._vectorizers = []
        if config.word_ngrams[0] > 0:
            self._vectorizers.append(HashingVectorizer(analyzer="word", ngram_range=config.word_ngrams, **common))
        if config.char_ngrams[0] > 0:
            self._vectorizers.append(HashingVectorizer(analyzer="char_wb", ngram_range=config.char_ngrams, **common))
        if not self._vectorizers:
            raise ValueError("featurizer has neither word nor char n-grams enabled")

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts per (text, bucket)."""
        texts = list(texts)
        if not texts:
            # scikit-learn's hasher raises StopIteration on an empty input; an empty split is a valid 0-row matrix.
            return sp.csr_matrix((0, self.config.num_buckets), dtype=np.float32)
        matrix = self._vectorizers[0].transform(texts)
        for vectorizer in self._vectorizers[1:]:
            matrix = matrix + vectorizer.transform(texts)
        return sp.csr_matrix(matrix)

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
