"""Featurisers a user's classifier can sit on: MiniLM embeddings, or hashed word n-grams (no model at all).

Hashed n-grams use blake2b, not Python's ``hash``: the latter is salted per process, and features must be the
same in every process that computes or checks a Teacher's outputs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

_WORD = re.compile(r"\w+")


class Featurizer(Protocol):
    """Texts -> float32 [n, dim] features."""

    dim: int

    def identity(self) -> dict[str, Any]:
        """JSON-able description that changes whenever the features would."""
        ...

    def __call__(self, texts: Sequence[str]) -> np.ndarray: ...


class HashedNgrams:
    """Signed feature hashing of word n-grams, L2-normalised rows.

    Config: ``{"kind": "hashed_ngrams", "dim": 4096, "ngram_range": [1, 2], "lowercase": true}``.
    """

    def __init__(self, dim: int = 4096, ngram_range: Sequence[int] = (1, 2), lowercase: bool = True) -> None:
        lo, hi = (int(x) for x in ngram_range)
        if dim <= 0 or not 1 <= lo <= hi:
            raise ValueError(
                f"hashed_ngrams needs dim > 0 and 1 <= ngram_range[0] <= ngram_range[1]; got {dim}, {ngram_range}"
            )
        self.dim, self.lo, self.hi, self.lowercase = int(dim), lo, hi, bool(lowercase)

    def identity(self) -> dict[str, Any]:
        return {
            "kind": "hashed_ngrams",
            "dim": self.dim,
            "ngram_range": [self.lo, self.hi],
            "lowercase": self.lowercase,
        }

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower() if self.lowercase else text)
            for n in range(self.lo, self.hi + 1):
                for i in range(len(words) - n + 1):
                    digest = hashlib.blake2b(" ".join(words[i : i + n]).encode(), digest_size=8).digest()
                    value = int.from_bytes(digest, "little")
                    # Low bits pick the bucket, the top bit the sign: collisions then cancel on average.
                    out[row, value % self.dim] += 1.0 if value >> 63 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


class MiniLMFeatures:
    """The MiniLM encoder's embeddings (loaded lazily). Config: ``{"kind": "minilm"}``."""

    def __init__(self, batch_size: int = 128) -> None:
        from matta_core.teachers.minilm import MINILM_DIM, MiniLMEncoder

        self.dim = MINILM_DIM
        self.encoder = MiniLMEncoder(batch_size=batch_size)

    def identity(self) -> dict[str, Any]:
        return {"kind": "minilm", "encoder": self.encoder.fingerprint()}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.predict(texts)["embeddings"]


FEATURIZERS = ("hashed_ngrams", "minilm")


def make_featurizer(config: dict[str, Any], where: str) -> Featurizer:
    """Build a featuriser from its config; ValueError naming `where` for unknown kinds or fields."""
    cfg = dict(config)
    kind = cfg.pop("kind", None)
    try:
        if kind == "hashed_ngrams":
            return HashedNgrams(**cfg)
        if kind == "minilm":
            return MiniLMFeatures(**cfg)
    except TypeError as exc:
        raise ValueError(f"{where}: bad fields for features kind {kind!r}: {exc}") from exc
    raise ValueError(f"{where}: features.kind is {kind!r}; allowed: {', '.join(FEATURIZERS)}")
