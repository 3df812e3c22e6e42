"""Batches of bag-of-n-gram features in the (ids, offsets, weights) layout of `nn.EmbeddingBag`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


class FeatureError(ValueError):
    """Input features the model cannot use; the message says which field and what is allowed."""


@dataclass(frozen=True)
class FeatureBatch:
    """One batch: n-gram bucket ids and counts for each example, plus optional dense numeric columns.

    `ids[offsets[i]:offsets[i+1]]` are example i's buckets and `counts` their term counts (a bag may be empty).
    """

    ids: torch.Tensor
    offsets: torch.Tensor
    counts: torch.Tensor
    dense: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.offsets.numel())

    def to(self, device: torch.device | str) -> FeatureBatch:
        dense = None if self.dense is None else self.dense.to(device)
        return FeatureBatch(self.ids.to(device), self.offsets.to(device), self.counts.to(device), dense)

    def validate(self, num_buckets: int, num_dense: int) -> None:
        """Raise `FeatureError` naming the bad field, instead of an index error deep inside torch."""
        if self.batch_size == 0:
            raise FeatureError("empty batch: at least one example is needed")
        if self.ids.dtype != torch.long or self.offsets.dtype != torch.long:
            raise FeatureError(f"ids and offsets must be int64, got {self.ids.dtype} and {self.offsets.dtype}")
        if self.ids.numel() != self.counts.numel():
            raise FeatureError(f"ids ({self.ids.numel()}) and counts ({self.counts.numel()}) differ in length")
        if self.ids.numel() and (int(self.ids.min()) < 0 or int(self.ids.max()) >= num_buckets):
            raise FeatureError(
                f"n-gram id out of range [{int(self.ids.min())}, {int(self.ids.max())}]: allowed 0..{num_buckets - 1}"
            )
        if int(self.offsets[0]) != 0 or bool((self.offsets[1:] < self.offsets[:-1]).any()):
            raise FeatureError("offsets must start at 0 and never decrease")
        if not bool(torch.isfinite(self.counts).all()):
            raise FeatureError("n-gram counts contain NaN or infinity")
        if num_dense == 0:
            if self.dense is not None and self.dense.shape[-1] != 0:
                raise FeatureError(f"model takes no dense features, got {self.dense.shape[-1]} columns")
            return
        if self.dense is None:
            raise FeatureError(f"model needs {num_dense} dense feature columns, got none")
        if tuple(self.dense.shape) != (self.batch_size, num_dense):
            raise FeatureError(
                f"dense features have shape {tuple(self.dense.shape)}, expected ({self.batch_size}, {num_dense})"
            )
        bad = ~torch.isfinite(self.dense)
        if bool(bad.any()):
            row, col = (int(v) for v in bad.nonzero()[0])
            raise FeatureError(
                f"dense feature column {col} of example {row} in the batch is {float(self.dense[row, col])}: "
                "features must be finite (impute or drop the row in data prep)"
            )


class SparseFeatures:
    """A whole split's features in CSR form, sliced into `FeatureBatch`es by row index without Python loops."""

    def __init__(self, matrix: sp.csr_matrix, dense: np.ndarray | None = None) -> None:
        matrix = sp.csr_matrix(matrix)
        matrix.sum_duplicates()
        self.indptr = torch.from_numpy(matrix.indptr.astype(np.int64))
        self.indices = torch.from_numpy(matrix.indices.astype(np.int64))
        self.values = torch.from_numpy(matrix.data.astype(np.float32))
        self.dense = None if dense is None else torch.as_tensor(np.asarray(dense, dtype=np.float32))
        if self.dense is not None and self.dense.shape[0] != matrix.shape[0]:
            raise FeatureError(f"dense features have {self.dense.shape[0]} rows, text features {matrix.shape[0]}")

    def __len__(self) -> int:
        return int(self.indptr.numel() - 1)

    def batch(self, rows: torch.Tensor | np.ndarray | list[int]) -> FeatureBatch:
        """The examples at `rows`, in that order."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        offsets = torch.zeros_like(lengths)
        if lengths.numel() > 1:
            offsets[1:] = torch.cumsum(lengths[:-1], dim=0)
        # Element j of the batch comes from position j - offsets[row] + starts[row] of the CSR arrays.
        shift = torch.repeat_interleave(starts - offsets, lengths)
        gather = torch.arange(int(lengths.sum())) + shift
        dense = None if self.dense is None else self.dense[rows]
        return FeatureBatch(self.indices[gather], offsets, self.values[gather], dense)
