"""A linear layer that runs at any prefix of its input and output widths.

Widths are taken by *slicing* (`weight[:out, :in]`), never by masking: a narrower call multiplies a smaller
matrix, so its cost falls with the width. The active widths are arguments of `forward`, not module or global
state, so one module can serve several widths in the same step (the TA, the Student and sampled widths).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class NestedLinear(nn.Module):
    """`y = x @ W[:out, :in].T + b[:out]` for any `in_features <= max_in`, `out_features <= max_out`."""

    def __init__(self, max_in: int, max_out: int, bias: bool = True) -> None:
        super().__init__()
        if max_in < 1 or max_out < 1:
            raise ValueError(f"NestedLinear needs positive sizes, got max_in={max_in}, max_out={max_out}")
        self.max_in = max_in
        self.max_out = max_out
        self.weight = nn.Parameter(torch.empty(max_out, max_in))
        self.bias = nn.Parameter(torch.empty(max_out)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scheme as nn.Linear, with fan-in of the full layer: every width shares these weights.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.max_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        """Apply the layer at input width `x.shape[-1]` and output width `out_features` (default: full)."""
        in_features = x.shape[-1]
        out_features = self.max_out if out_features is None else out_features
        if not (1 <= in_features <= self.max_in and 1 <= out_features <= self.max_out):
            raise ValueError(
                f"NestedLinear({self.max_in}->{self.max_out}) asked for {in_features}->{out_features}; "
                f"allowed input 1..{self.max_in}, output 1..{self.max_out}"
            )
        weight = self.weight[:out_features, :in_features]
        bias = None if self.bias is None else self.bias[:out_features]
        return F.linear(x, weight, bias)

    def sliced_state(self, in_features: int, out_features: int) -> dict[str, torch.Tensor]:
        """Independent copies of the weights a standalone `nn.Linear(in_features, out_features)` needs."""
        state = {"weight": self.weight[:out_features, :in_features].detach().clone()}
        if self.bias is not None:
            state["bias"] = self.bias[:out_features].detach().clone()
        return state

    def extra_repr(self) -> str:
        return f"max_in={self.max_in}, max_out={self.max_out}, bias={self.bias is not None}"
