"""Temperature scaling (Guo et al., 2017): one scalar T per model, fitted on held-out rows, so that
softmax(logits / T) are calibrated probabilities. Predictions (the argmax) do not change; scores fed to thresholds
or ranking do.

Narrow sub-models distilled at temperature tau come out over- or under-confident by different amounts, so every
extracted width gets its own T (fitted on the validation split at extraction, stored in its config, applied by
the servable model).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

#: The temperatures searched (log-uniform bounds): wider than any sane model needs, so a fit never sits on a bound.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def fit_temperature(logits: Any, labels: Any) -> float:
    """The T in `TEMPERATURE_BOUNDS` minimising the mean NLL of softmax(logits / T) on (`logits`, `labels`).

    A one-dimensional bounded search over log T (deterministic, float64); raises ValueError on empty or
    mismatched inputs or non-finite logits.
    """
    z = np.asarray(logits.detach().cpu() if hasattr(logits, "detach") else logits, dtype=np.float64)
    y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels, dtype=np.int64)
    if z.ndim != 2 or len(z) == 0 or y.shape != (len(z),):
        raise ValueError(f"calibration needs [n, classes] logits and n labels, got {z.shape} and {y.shape}")
    if not np.isfinite(z).all():
        raise ValueError("calibration logits hold NaN or infinity")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be in 0..{z.shape[1] - 1}, got {int(y.min())}..{int(y.max())}")
    picked = z[np.arange(len(z)), y]

    def mean_nll(log_t: float) -> float:
        scaled = z / math.exp(log_t)
        top = scaled.max(axis=1)
        log_norm = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float((log_norm - picked / math.exp(log_t)).mean())

    low, high = (math.log(t) for t in TEMPERATURE_BOUNDS)
    found = minimize_scalar(mean_nll, bounds=(low, high), method="bounded", options={"xatol": 1e-5})
    return float(math.exp(found.x))
