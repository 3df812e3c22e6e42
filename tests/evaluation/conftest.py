"""Fixtures of the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest

from matta_core.families.classifier.model import NestedClassifier
from matta_core.features import SparseFeatures
from tests.evaluation.tiny import make_tiny_nested


@pytest.fixture
def tiny_nested() -> tuple[NestedClassifier, SparseFeatures, np.ndarray]:
    """A 2-layer nested model (random init, fixed seed), its features and labels."""
    return make_tiny_nested()
