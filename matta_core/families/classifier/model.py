"""The nested (Matryoshka) classifier: one set of weights, any per-layer width at call time.

    text --hash--> bucket counts --IDF, L2--> EmbeddingBag(sum) [+ dense] --> block_0 ... block_L --> head

Each hidden block is a `NestedLinear` followed by the activation; block i runs at width `widths[i]` and reads the
first `widths[i-1]` features of the block before it, so every sub-model is a prefix slice of the TA. The
embedding bag is shared by all widths and computed once per batch (`embed`), which is what makes a joint
TA+Student step cost little more than a TA step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.standalone import pool_bag
from matta_core.features.batch import FeatureBatch
from matta_core.nested.linear import NestedLinear
from matta_core.nested.widths import Widths, validate_widths


class NestedClassifier(nn.Module):
    """The TA; run it at `widths` to get any nested sub-model's logits (the Student is `config.student_widths`)."""

    def __init__(self, config: ClassifierConfig, *, init: bool = True) -> None:
        """`init=False` leaves the embedding table as allocated, for a caller that loads weights next
        (`nested_io.load_nested`): its random draws are most of a build's time."""
        super().__init__()
        self.config = config
        num_buckets = config.features.num_buckets
        table = None if init else torch.empty(num_buckets, config.embed_dim)
        # Sparse gradients: a batch touches ~1e4 of 2.6e5 rows; see training/optim.py (SplitOptimizer) for why.
        self.embedding = nn.EmbeddingBag(num_buckets, config.embed_dim, mode="sum", sparse=True, _weight=table)
        if init:
            nn.init.normal_(self.embedding.weight, std=0.1)
        # IDF is data, not a parameter: fitted on the training split and carried into every extracted model.
        self.register_buffer("idf", torch.ones(num_buckets))
        dims = [config.input_dim, *config.hidden_widths]
        self.blocks = nn.ModuleList(NestedLinear(dims[i], dims[i + 1]) for i in range(len(config.hidden_widths)))
        self.head = NestedLinear(config.hidden_widths[-1], config.num_classes)
        self.activation = F.relu if config.activation == "relu" else F.gelu

    def set_idf(self, idf: torch.Tensor) -> None:
        """Install the IDF vector fitted on the training split."""
        idf = torch.as_tensor(idf, dtype=torch.float32)
        if idf.shape != self.idf.shape or not bool(torch.isfinite(idf).all()):
            raise ValueError(f"idf must be {tuple(self.idf.shape)} finite floats, got {tuple(idf.shape)}")
        self.idf.copy_(idf)

    def embed(self, batch: FeatureBatch) -> torch.Tensor:
        """The width-independent input representation, shared by every sub-model in a step."""
        batch.validate(self.config.features.num_buckets, self.config.num_dense_features)
        pooled = pool_bag(self.embedding, self.idf, batch.ids, batch.offsets, batch.counts)
        if self.config.num_dense_features:
            pooled = torch.cat([pooled, batch.dense], dim=-1)
        return pooled

    def head_forward(self, hidden: torch.Tensor, widths: Widths) -> torch.Tensor:
        """Run the hidden blocks and the head at `widths` on an already embedded batch (of the TA's embedding
        dims: a width with a nested embedding reads their prefix, which equals the bag of its rows' prefixes)."""
        if self.config.student_embed_dim is not None:
            hidden = hidden[:, : self.config.embed_dim_for(widths)]
        for block, width in zip(self.blocks, widths, strict=True):
            hidden = self.activation(block(hidden, width))
            if self.config.dropout:
                hidden = F.dropout(hidden, self.config.dropout, self.training)
        return self.head(hidden)

    def forward(self, batch: FeatureBatch, widths: Widths | None = None) -> torch.Tensor:
        """Logits of the sub-model at `widths` (default: the full TA)."""
        widths = self.config.ta_widths if widths is None else self.check_widths(widths)
        return self.head_forward(self.embed(batch), widths)

    def check_widths(self, widths: Widths) -> Widths:
        """Validate a per-layer width tuple, with an error naming the layer and the allowed range."""
        return validate_widths(self.config.width_slots(), widths)
