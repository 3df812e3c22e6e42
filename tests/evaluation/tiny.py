"""Tiny models and features shared by the evaluation tests (hundreds of parameters, milliseconds to run)."""

from __future__ import annotations

import numpy as np
import torch

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.model import NestedClassifier
from matta_core.features import HashedNgramFeaturizer, SparseFeatures, inverse_document_frequency

TEXTS = [
    "I still have not received my new card",
    "How do I top up my account with a cheque?",
    "why was I charged a fee for my transfer",
    "my card payment was declined at the shop",
    "Can I change my PIN at an ATM?",
    "where is my card, it has been two weeks",
    "top up failed twice this morning",
    "",  # an empty bag still gives finite logits
]
LABELS = np.array([0, 1, 2, 2, 3, 0, 1, 3])


def tiny_config(
    hidden: tuple[int, ...] = (24, 16), student: tuple[int, ...] = (8, 8), dense: int = 0
) -> ClassifierConfig:
    return ClassifierConfig(
        num_classes=4,
        hidden_widths=hidden,
        student_widths=student,
        embed_dim=12,
        num_dense_features=dense,
        min_width=4,
        features={"num_buckets": 2**9},
    )


def make_tiny_nested(seed: int = 0, dense: int = 0) -> tuple[NestedClassifier, SparseFeatures, np.ndarray]:
    """A 2-layer nested model (random init, fixed seed), the features of `TEXTS` (+ `dense` random columns), labels."""
    torch.manual_seed(seed)
    config = tiny_config(dense=dense)
    columns = np.random.default_rng(seed).normal(size=(len(TEXTS), dense)) if dense else None
    features = HashedNgramFeaturizer(config.features).transform(TEXTS, columns)
    model = NestedClassifier(config)
    model.set_idf(torch.from_numpy(inverse_document_frequency(features, config.features.num_buckets)))
    return model.eval(), features, LABELS
