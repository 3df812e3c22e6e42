"""What LM evaluation runs: any `nn.Module` mapping ids [B, T] -> logits [B, T, V]. Two adapters make the
project's other models fit: a nested decoder pinned at one width, and a Hugging Face causal LM (the Teacher)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from matta_core.families.decoder.extract import standalone_decoder_config
from matta_core.families.decoder.model import NestedDecoder
from matta_core.families.decoder.standalone import StandaloneDecoder, StandaloneDecoderConfig


class NestedAtWidths(nn.Module):
    """A `NestedDecoder` run at fixed per-block widths; its cost is that of the sub-model, not of the TA."""

    def __init__(self, model: NestedDecoder, widths: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.model = model
        self.widths = model.check_widths(widths)  # validated once, not on every call

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.head_forward(self.model.embed(input_ids), self.widths)


class HFCausalLMLogits(nn.Module):
    """A Hugging Face causal LM as ids -> float32 logits.

    No attention mask is passed: batches are right-padded and attention is causal, so pads after a row's last real
    token cannot change the logits at its real positions, which are the only ones scored.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    @property
    def config(self) -> Any:
        return self.model.config

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(input_ids=input_ids).logits
        return logits.float()


def decoder_shape(model: nn.Module) -> StandaloneDecoderConfig | None:
    """The standalone shape of a project decoder (a nested one at its widths, or the full TA); None otherwise."""
    if isinstance(model, StandaloneDecoder):
        return model.config
    if isinstance(model, NestedAtWidths):
        return standalone_decoder_config(model.model.config, model.widths)
    if isinstance(model, NestedDecoder):
        return standalone_decoder_config(model.config, model.config.ta_widths)
    return None
