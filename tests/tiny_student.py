"""A tiny extracted classifier Student for tests of what is done with a saved model (logging, serving, checks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.extract import extract, extracted_config, save_extracted
from matta_core.families.classifier.model import NestedClassifier


def write_tiny_student(directory: Path, num_classes: int, labels: Sequence[str] | None = None) -> Path:
    """An 8-wide Student cut from a 16-wide TA, weights drawn N(0, 1) (seed 0) so that predictions differ by
    text; saved to ``directory`` as an extracted model folder."""
    torch.manual_seed(0)
    config = ClassifierConfig(num_classes=num_classes, hidden_widths=(16,), student_widths=(8,), embed_dim=8,
                              features={"num_buckets": 2**10})
    nested = NestedClassifier(config)
    with torch.no_grad():
        for parameter in nested.parameters():
            parameter.normal_(0.0, 1.0)
    meta = extracted_config(config, (8,), labels=tuple(labels)) if labels else extracted_config(config, (8,))
    return save_extracted(extract(nested, (8,)), meta, directory)
