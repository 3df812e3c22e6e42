"""Every servable classifier's temperature, fitted on the validation split when it is written (extraction, and
the train step's baselines): see `matta_core.evaluation.calibration`."""

from __future__ import annotations

from typing import Any

from matta_core.evaluation.calibration import fit_temperature
from matta_core.families.classifier.evaluate import predict_logits
from matta_core.families.classifier.standalone import StandaloneClassifier
from matta_core.features import SparseFeatures


def validation_temperature(model: StandaloneClassifier, features: SparseFeatures, labels: Any) -> float:
    """The temperature that calibrates `model`'s probabilities on the labelled validation rows (`features`,
    `labels`). Without validation rows (a split too small to have any) the model keeps T = 1."""
    if not len(features):
        return 1.0
    return fit_temperature(predict_logits(model, features), labels)
