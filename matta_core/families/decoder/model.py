"""The nested (Matryoshka) decoder: one set of GPT-2 style weights, any per-block (ffn_width, n_heads) at call time.

    ids --> wte + wpe --> [LN -> causal attention (first h heads) -> +] [LN -> GELU MLP (first f units) -> +] x L
        --> LN --> logits = x @ wte.T

Every sub-model is a prefix slice of the TA, taken by slicing (`NestedLinear`), never masking: a block run with
fewer heads or FFN units multiplies smaller matrices. The FFN nests MatFormer style (rows of W_in, columns of
W_out); attention nests by whole heads (rows of the q/k/v projection, columns of the output projection). The
active widths are an argument of `forward`, never module or global state, so one step can run the TA, the Student
and sampled sub-models on the same embedded batch (`embed` once, `head_forward` per width).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from matta_core.families.decoder.config import DecoderConfig, DecoderWidths
from matta_core.families.decoder.standalone import activation_fn, check_input_ids
from matta_core.nested.linear import NestedLinear


class NestedAttention(nn.Module):
    """Causal self-attention that runs with any number of its first heads."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.dropout = dropout
        # Rows are laid out head-major (head 0's q, k, v, then head 1's, ...), so the first h heads are one
        # contiguous prefix of rows: a single sliced matmul, as for any NestedLinear. Extraction reorders the rows
        # to the usual q;k;v layout.
        self.qkv = NestedLinear(d_model, 3 * n_heads * head_dim)
        self.proj = NestedLinear(n_heads * head_dim, d_model)

    def forward(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        batch, seq, _ = x.shape
        qkv = self.qkv(x, 3 * heads * self.head_dim).view(batch, seq, heads, 3, self.head_dim)
        q, k, v = qkv.permute(3, 0, 2, 1, 4)  # each (batch, heads, seq, head_dim)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        # The output projection reads only the first heads * head_dim columns (NestedLinear slices by input width).
        return self.proj(y.transpose(1, 2).reshape(batch, seq, heads * self.head_dim))


class NestedMLP(nn.Module):
    """GELU feed-forward that runs at any prefix of its hidden units."""

    def __init__(self, d_model: int, max_ffn: int, activation: str) -> None:
        super().__init__()
        self.fc = NestedLinear(d_model, max_ffn)
        self.proj = NestedLinear(max_ffn, d_model)
        self.activation = activation_fn(activation)

    def forward(self, x: torch.Tensor, ffn: int) -> torch.Tensor:
        return self.proj(self.activation(self.fc(x, ffn)))


class NestedBlock(nn.Module):
    """Pre-LN transformer block; LayerNorms act on d_model, which is not nested, so every width shares them."""

    def __init__(self, config: DecoderConfig, max_ffn: int) -> None:
        super().__init__()
        self.dropout = config.dropout
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = NestedAttention(config.d_model, config.n_heads, config.resolved_head_dim, config.dropout)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = NestedMLP(config.d_model, max_ffn, config.activation)

    def forward(self, x: torch.Tensor, ffn: int, heads: int) -> torch.Tensor:
        x = x + F.dropout(self.attn(self.ln_1(x), heads), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.ln_2(x), ffn), self.dropout, self.training)


class NestedDecoder(nn.Module):
    """The TA; run it at per-block `widths` to get any nested sub-model's logits (the Student: `student_widths`)."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.n_positions, config.d_model)
        self.blocks = nn.ModuleList(NestedBlock(config, w.ffn) for w in config.ta_widths)
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # GPT-2's scheme: N(0, 0.02) weights, zero biases, and residual projections scaled by 1/sqrt(2 * layers)
        # so the residual stream's variance does not grow with depth.
        residual_std = 0.02 / (2 * self.config.n_layers) ** 0.5
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            elif name.endswith(("attn.proj.weight", "mlp.proj.weight")):
                nn.init.normal_(param, std=residual_std)
            elif param.dim() == 2:
                nn.init.normal_(param, std=0.02)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token + position embeddings: width-independent, so computed once and shared by every sub-model."""
        check_input_ids(input_ids, self.config.vocab_size, self.config.n_positions)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return F.dropout(self.wte(input_ids) + self.wpe(positions), self.config.dropout, self.training)

    def head_forward(self, hidden: torch.Tensor, widths: DecoderWidths) -> torch.Tensor:
        """Run the blocks at already-validated `widths` on embedded input; logits (batch, seq, vocab_size)."""
        for block, (ffn, heads) in zip(self.blocks, widths, strict=True):
            hidden = block(hidden, ffn, heads)
        return F.linear(self.ln_f(hidden), self.wte.weight)

    def forward(self, input_ids: torch.Tensor, widths: Sequence[Sequence[int]] | None = None) -> torch.Tensor:
        """Next-token logits of the sub-model at per-block (ffn_width, n_heads) `widths` (default: the full TA)."""
        checked = self.config.ta_widths if widths is None else self.check_widths(widths)
        return self.head_forward(self.embed(input_ids), checked)

    def check_widths(self, widths: Sequence[Sequence[int]]) -> DecoderWidths:
        """Validate per-block widths, with an error naming the layer and the allowed range."""
        return self.config.check_widths(widths)
