"""The servable classifier: an ordinary PyTorch module of fixed widths, as produced by extraction.

This file depends on torch alone, on purpose: an extracted model (weights in safetensors, this config in JSON)
can be served by copying this one file, without installing matta.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def pool_bag(
    embedding: nn.EmbeddingBag, idf: torch.Tensor, ids: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """TF-IDF weighted sum of n-gram embeddings, with the weights L2-normalised per example.

    Normalising makes long and short queries comparable; summing (rather than averaging) keeps a rare,
    informative n-gram from being diluted by the many frequent ones.
    """
    weights = counts * idf[ids]
    lengths = torch.diff(offsets, append=offsets.new_tensor([ids.numel()]))
    example = torch.repeat_interleave(torch.arange(offsets.numel(), device=ids.device), lengths)
    norms = torch.zeros(offsets.numel(), device=weights.device).index_add_(0, example, weights * weights)
    weights = weights / norms.sqrt().clamp_min(1e-12)[example]
    return embedding(ids, offsets, per_sample_weights=weights)


class StandaloneClassifier(nn.Module):
    """Embedding bag [+ dense columns] -> Linear/activation blocks of fixed widths -> class head."""

    def __init__(
        self,
        num_buckets: int,
        embed_dim: int,
        hidden_widths: Sequence[int],
        num_classes: int,
        num_dense_features: int = 0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.num_dense_features = num_dense_features
        self.embedding = nn.EmbeddingBag(num_buckets, embed_dim, mode="sum")
        self.register_buffer("idf", torch.ones(num_buckets))
        dims = [embed_dim + num_dense_features, *hidden_widths]
        self.blocks = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(hidden_widths)))
        self.head = nn.Linear(dims[-1], num_classes)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(
        self,
        ids: torch.Tensor,
        offsets: torch.Tensor,
        counts: torch.Tensor,
        dense: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits for a batch in `nn.EmbeddingBag` layout (ids, offsets, per-id counts)."""
        hidden = pool_bag(self.embedding, self.idf, ids, offsets, counts)
        if self.num_dense_features:
            hidden = torch.cat([hidden, dense], dim=-1)
        for block in self.blocks:
            hidden = self.activation(block(hidden))
        return self.head(hidden)
