"""A linear classification head over frozen features: fitted by logistic regression, saved as safetensors + JSON.

Logits are the head's decision function, ``x @ weight.T + bias`` (unnormalised log-odds; ``softmax`` of them is
the fitted multinomial model's class probabilities). They are always computed here, from the stored float32
weights, never by scikit-learn: so a head gives bit-identical logits before and after a save/load round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from matta_core import storage
from matta_core.teachers.fingerprint import sha256_arrays, sha256_json

HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head.json"
HEAD_FORMAT = "matta.linear_head"

# Classes absent from the training labels get a zero weight row and a bias this far below the lowest fitted
# bias: ~zero probability, yet finite logits (inf/NaN would poison distillation losses downstream).
_ABSENT_CLASS_MARGIN = 20.0


@dataclass
class LinearHead:
    """``logits = features @ weight.T + bias``; `config` records how it was fitted (JSON-able)."""

    weight: np.ndarray  # float32 [num_classes, dim]
    bias: np.ndarray  # float32 [num_classes]
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weight = np.ascontiguousarray(self.weight, dtype=np.float32)
        self.bias = np.ascontiguousarray(self.bias, dtype=np.float32)
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError(
                f"head weight must be [C, D] and bias [C]; got {list(self.weight.shape)} and {list(self.bias.shape)}"
            )

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """float32 [n, num_classes] logits for float features [n, dim]."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"head expects features [n, {self.dim}], got {list(x.shape)}")
        return (x @ self.weight.T + self.bias).astype(np.float32, copy=False)

    def fingerprint(self) -> str:
        """Hex sha256 of the weights and the fitting config."""
        return sha256_json({"arrays": sha256_arrays({"weight": self.weight, "bias": self.bias}), "config": self.config})

    def save(self, directory: str) -> None:
        """Write ``head.safetensors`` (weight, bias) and ``head.json`` (format + config) into `directory` (a URI)."""
        storage.write_bytes(storage.join(directory, HEAD_WEIGHTS), st_save({"weight": self.weight, "bias": self.bias}))
        meta = {"format": HEAD_FORMAT, "version": 1, "config": self.config}
        storage.write_text(storage.join(directory, HEAD_CONFIG), json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str) -> LinearHead:
        """Read a head written by `save` from `directory` (a URI)."""
        weights_uri, config_uri = storage.join(directory, HEAD_WEIGHTS), storage.join(directory, HEAD_CONFIG)
        meta = json.loads(storage.read_text(config_uri))
        if meta.get("format") != HEAD_FORMAT:
            raise ValueError(f"{config_uri}: format is {meta.get('format')!r}, expected {HEAD_FORMAT!r}")
        tensors = st_load(storage.read_bytes(weights_uri))
        missing = {"weight", "bias"} - set(tensors)
        if missing:
            raise ValueError(f"{weights_uri}: missing tensors {sorted(missing)}")
        return cls(tensors["weight"], tensors["bias"], meta.get("config", {}))


def fit_logistic_head(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int | None = None,
    c: float = 10.0,
    seed: int = 0,
    max_iter: int = 1000,
) -> LinearHead:
    """Fit a multinomial logistic regression (L2, lbfgs) and return it as a `LinearHead`.

    `labels` are int class ids in ``[0, num_classes)``; `num_classes` defaults to ``max(labels) + 1``. Column j of
    the logits is always class j, also for classes that do not occur in `labels`.
    """
    from sklearn.linear_model import LogisticRegression  # heavy import, only needed when fitting

    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"fit needs features [n, d] and labels [n]; got {list(x.shape)} and {list(y.shape)}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    n_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}); found [{int(y.min())}, {int(y.max())}]")
    seen = np.unique(y)
    if seen.size < 2:
        raise ValueError(f"fit needs at least 2 distinct labels, got {seen.tolist()}")

    clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    clf.fit(x, y)
    weight = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    bias = np.zeros(n_classes, dtype=np.float32)
    fitted_classes = clf.classes_.astype(np.int64)
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # sklearn stores a binary problem as one row: class 1 vs class 0
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    weight[fitted_classes] = coef
    bias[fitted_classes] = intercept
    absent = np.setdiff1d(np.arange(n_classes), fitted_classes)
    bias[absent] = bias[fitted_classes].min() - _ABSENT_CLASS_MARGIN
    config = {
        "kind": "logistic_regression",
        "C": float(c),
        "seed": int(seed),
        "max_iter": int(max_iter),
        "num_classes": n_classes,
        "absent_classes": absent.tolist(),
        "train_rows": int(x.shape[0]),
        "n_iter": int(np.max(clf.n_iter_)),
    }
    return LinearHead(weight, bias, config)
