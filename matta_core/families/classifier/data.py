"""The classifier's training data (features, labels, Teacher logits), checked once up front; the order its batches
are drawn in is every family's (`matta_core.training.order`).

Checks run when the data is built, with row indices of the whole split, so a bad row is reported as
"row 1234" rather than as an index error (or a silent NaN) somewhere inside a training step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.features.batch import FeatureBatch, SparseFeatures
from matta_core.features.hashing import HashedNgramFeaturizer

ArrayLike = np.ndarray | torch.Tensor


class TrainingDataError(ValueError):
    """Training data that cannot be used; the message names the field, the row, and what is allowed."""


@dataclass(frozen=True)
class TrainingBatch:
    """The rows of one step: features, and labels and/or Teacher logits (None when the split has none)."""

    features: FeatureBatch
    labels: torch.Tensor | None
    teacher_logits: torch.Tensor | None

    def to(self, device: torch.device | str) -> TrainingBatch:
        return TrainingBatch(
            self.features.to(device),
            None if self.labels is None else self.labels.to(device),
            None if self.teacher_logits is None else self.teacher_logits.to(device),
        )


class TrainingData:
    """A split's features with labels and/or Teacher logits, validated on construction.

    `num_classes` bounds the labels; it defaults to the Teacher's logit count, and the trainer checks it against
    the model's config in any case (`check_compatible`).
    """

    def __init__(
        self,
        features: SparseFeatures,
        labels: ArrayLike | Sequence[int] | None,
        teacher_logits: ArrayLike | None,
        num_classes: int | None = None,
    ) -> None:
        n = len(features)
        if n == 0:
            raise TrainingDataError("no training rows: the features have 0 rows")
        if labels is None and teacher_logits is None:
            raise TrainingDataError("training data needs labels, Teacher logits, or both; got neither")
        self.features = features
        self.teacher_logits = None if teacher_logits is None else _check_teacher(teacher_logits, n)
        if num_classes is None and self.teacher_logits is not None:
            num_classes = int(self.teacher_logits.shape[1])
        if num_classes is not None and self.teacher_logits is not None and num_classes != self.teacher_logits.shape[1]:
            raise TrainingDataError(
                f"Teacher logits have {self.teacher_logits.shape[1]} columns but num_classes is {num_classes}"
            )
        self.num_classes = num_classes
        self.labels = None if labels is None else _check_labels(labels, n, num_classes)
        _check_dense(features)

    @classmethod
    def from_texts(
        cls,
        featurizer: HashedNgramFeaturizer,
        texts: Sequence[str],
        labels: ArrayLike | Sequence[int] | None,
        teacher_logits: ArrayLike | None,
        dense: np.ndarray | None = None,
        num_classes: int | None = None,
    ) -> TrainingData:
        """Featurise `texts` (and dense columns) and wrap them with their targets."""
        if len(texts) == 0:
            raise TrainingDataError("no training rows: the text list is empty")
        return cls(featurizer.transform(list(texts), dense), labels, teacher_logits, num_classes)

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, rows: torch.Tensor) -> TrainingBatch:
        """The examples at `rows`, in that order."""
        return TrainingBatch(
            self.features.batch(rows),
            None if self.labels is None else self.labels[rows],
            None if self.teacher_logits is None else self.teacher_logits[rows],
        )

    def check_compatible(self, config: ClassifierConfig, what: str = "training data") -> None:
        """Raise `TrainingDataError` if this data cannot train or evaluate a model with `config`."""
        if self.num_classes is not None and self.num_classes != config.num_classes:
            raise TrainingDataError(
                f"{what} has {self.num_classes} classes but the model config has num_classes={config.num_classes}"
            )
        if self.labels is not None and self.num_classes is None:
            _check_labels(self.labels, len(self), config.num_classes)
        dense_cols = 0 if self.features.dense is None else int(self.features.dense.shape[1])
        if dense_cols != config.num_dense_features:
            raise TrainingDataError(
                f"{what} has {dense_cols} dense feature columns but the model config has "
                f"num_dense_features={config.num_dense_features}"
            )
        num_buckets = config.features.num_buckets
        if self.features.indices.numel() and int(self.features.indices.max()) >= num_buckets:
            raise TrainingDataError(
                f"{what} has n-gram ids up to {int(self.features.indices.max())} but the model has "
                f"{num_buckets} buckets: featurise with the model's FeaturizerConfig"
            )


def _check_labels(labels: ArrayLike | Sequence[int], n: int, num_classes: int | None) -> torch.Tensor:
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim != 1:
        raise TrainingDataError(f"labels must be 1-D (one class index per row), got shape {array.shape}")
    if array.shape[0] != n:
        raise TrainingDataError(f"labels have {array.shape[0]} rows but the features have {n} rows")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TrainingDataError(f"labels must be integer class indices, got dtype {array.dtype}")
    high = num_classes if num_classes is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((array < 0) | (array >= high))
    if bad.size:
        row = int(bad[0])
        allowed = f"0..{num_classes - 1} (num_classes={num_classes})" if num_classes is not None else ">= 0"
        raise TrainingDataError(
            f"label at row {row} is {int(array[row])}: allowed {allowed}; {bad.size} row(s) out of range"
        )
    return torch.from_numpy(array.astype(np.int64))


def _check_teacher(teacher_logits: ArrayLike, n: int) -> torch.Tensor:
    if isinstance(teacher_logits, torch.Tensor):
        array = teacher_logits.detach().cpu().numpy()
    else:
        array = np.asarray(teacher_logits)
    if array.ndim != 2:
        raise TrainingDataError(f"Teacher logits must be 2-D [rows, num_classes], got shape {array.shape}")
    if array.shape[0] != n:
        raise TrainingDataError(f"Teacher logits have {array.shape[0]} rows but the features have {n} rows")
    if not np.issubdtype(array.dtype, np.floating):
        raise TrainingDataError(f"Teacher logits must be floats, got dtype {array.dtype}")
    array = array.astype(np.float32)
    bad_rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad_rows.size:
        row = int(bad_rows[0])
        col = int(np.flatnonzero(~np.isfinite(array[row]))[0])
        raise TrainingDataError(
            f"Teacher logits at row {row}, class {col} are {array[row, col]}: logits must be finite; "
            f"{bad_rows.size} row(s) affected (re-run or drop them in the Teacher step)"
        )
    return torch.from_numpy(array)


def _check_dense(features: SparseFeatures) -> None:
    if features.dense is None:
        return
    bad = ~torch.isfinite(features.dense)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise TrainingDataError(
            f"dense feature column {col} at row {row} is {float(features.dense[row, col])}: features must be "
            f"finite; {int(bad.any(dim=1).sum())} row(s) affected (impute or drop them in data prep)"
        )
