"""Model families. Each has a nested (Matryoshka) form for training and a standalone form for serving."""

from matta_core.models.classifier_config import ClassifierConfig
from matta_core.models.nested_classifier import NestedClassifier
from matta_core.models.standalone_classifier import StandaloneClassifier

__all__ = ["ClassifierConfig", "NestedClassifier", "StandaloneClassifier"]
