"""Extraction: cut a standalone decoder of given per-block widths out of the nested TA.

Only the sliced tensors are copied, so the result is physically smaller and shares no storage with the TA.
Save and load it with `StandaloneDecoder.save` / `StandaloneDecoder.load` (safetensors + JSON, no pickle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch

from matta_core.families.decoder.config import DecoderConfig, DecoderWidths
from matta_core.families.decoder.model import NestedBlock, NestedDecoder
from matta_core.families.decoder.standalone import StandaloneDecoder, StandaloneDecoderConfig


def standalone_decoder_config(config: DecoderConfig, widths: DecoderWidths) -> StandaloneDecoderConfig:
    """The standalone shape for `widths` of a nested decoder with `config` (widths validated)."""
    widths = config.check_widths(widths)
    return StandaloneDecoderConfig(
        vocab_size=config.vocab_size,
        n_positions=config.n_positions,
        d_model=config.d_model,
        head_dim=config.resolved_head_dim,
        ffn_widths=tuple(w.ffn for w in widths),
        heads=tuple(w.heads for w in widths),
        activation=config.activation,
        layer_norm_eps=config.layer_norm_eps,
        # Where it came from, so a reader can tell a Student from a Mix'n'Match cut.
        metadata={"ta_widths": [list(w) for w in config.ta_widths]},
    )


def extract_decoder(model: NestedDecoder, widths: Sequence[Sequence[int]]) -> StandaloneDecoder:
    """A standalone copy of `model` at per-block (ffn_width, n_heads) `widths`, in eval mode."""
    checked = model.check_widths(widths)
    config = model.config
    head_dim = config.resolved_head_dim
    state: dict[str, torch.Tensor] = {}
    for name in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"):
        state[name] = model.get_parameter(name).detach().clone()
    for i, (ffn, heads) in enumerate(checked):
        block, prefix = cast(NestedBlock, model.blocks[i]), f"blocks.{i}"
        for ln in ("ln_1", "ln_2"):
            state[f"{prefix}.{ln}.weight"] = getattr(block, ln).weight.detach().clone()
            state[f"{prefix}.{ln}.bias"] = getattr(block, ln).bias.detach().clone()
        attn_width = heads * head_dim
        qkv = block.attn.qkv.sliced_state(config.d_model, 3 * attn_width)
        state[f"{prefix}.attn.qkv.weight"] = _heads_to_qkv(qkv["weight"], heads, head_dim)
        state[f"{prefix}.attn.qkv.bias"] = _heads_to_qkv(qkv["bias"], heads, head_dim)
        parts = {
            "attn.proj": block.attn.proj.sliced_state(attn_width, config.d_model),
            "mlp.fc": block.mlp.fc.sliced_state(config.d_model, ffn),
            "mlp.proj": block.mlp.proj.sliced_state(ffn, config.d_model),
        }
        for module, tensors in parts.items():
            for name, tensor in tensors.items():
                state[f"{prefix}.{module}.{name}"] = tensor
    standalone = StandaloneDecoder(standalone_decoder_config(config, checked))
    standalone.load_state_dict(state, strict=True)
    return standalone.eval()


def decoder_param_count(config: DecoderConfig, widths: Sequence[Sequence[int]]) -> int:
    """Parameters a standalone decoder at `widths` has (what extraction must produce)."""
    return standalone_decoder_config(config, config.check_widths(widths)).param_count()


def _heads_to_qkv(tensor: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    # The nested layout is head-major (h, 3, head_dim); the standalone one is (3, h, head_dim): all q, k, v.
    rest = tensor.shape[1:]
    return tensor.reshape(heads, 3, head_dim, *rest).transpose(0, 1).reshape(3 * heads * head_dim, *rest).clone()
