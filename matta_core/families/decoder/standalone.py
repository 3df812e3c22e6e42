"""The servable decoder: an ordinary GPT-2 style causal LM of fixed per-block widths, as extraction produces it.

This file depends on torch and safetensors alone, on purpose: an extracted model (`model.safetensors` +
`config.json`) can be served by copying this one file, without installing matta. Its layout is the textbook one
(fused q;k;v projection, `nn.Linear` everywhere, LM head tied to the token embedding), with one generalisation:
each block has its own FFN width and head count, and `heads * head_dim` need not equal `d_model`. It is an
inference model: no dropout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT = "matta.standalone_decoder/v1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """`gelu` is the exact (erf) GELU; `gelu_tanh` its tanh approximation, which original GPT-2 weights use."""
    if name == "gelu":
        return F.gelu
    if name == "gelu_tanh":
        return partial(F.gelu, approximate="tanh")
    raise ValueError(f"activation {name!r} unknown; allowed: ['gelu', 'gelu_tanh']")


def check_input_ids(input_ids: torch.Tensor, vocab_size: int, n_positions: int) -> None:
    """Refuse inputs the embeddings would reject with an opaque index error; say what is allowed instead."""
    if input_ids.dim() != 2 or input_ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"input_ids must be a 2-D (batch, seq) integer tensor, got {input_ids.dim()}-D {input_ids.dtype}"
        )
    batch, seq = input_ids.shape
    if batch == 0 or seq == 0:
        raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)})")
    if seq > n_positions:
        raise ValueError(f"sequence length {seq} exceeds n_positions {n_positions}; split the text into blocks")
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"token id out of range: saw {low}..{high}, allowed 0..{vocab_size - 1}")


@dataclass(frozen=True)
class StandaloneDecoderConfig:
    """The shape of a standalone decoder; stored as `config.json` beside the weights."""

    vocab_size: int
    n_positions: int
    d_model: int
    head_dim: int
    ffn_widths: tuple[int, ...]
    heads: tuple[int, ...]
    activation: str = "gelu"
    layer_norm_eps: float = 1e-5
    # Lineage and anything else a reader needs (the TA's widths, the arm, the tokenizer): not used to build.
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ffn_widths", tuple(int(w) for w in self.ffn_widths))
        object.__setattr__(self, "heads", tuple(int(h) for h in self.heads))
        if not self.ffn_widths or len(self.ffn_widths) != len(self.heads):
            raise ValueError(
                f"ffn_widths {list(self.ffn_widths)} and heads {list(self.heads)} must be non-empty "
                "and have one entry per layer each"
            )
        sizes = [self.vocab_size, self.n_positions, self.d_model, self.head_dim, *self.ffn_widths, *self.heads]
        if min(sizes) < 1:
            raise ValueError(f"standalone decoder sizes must be positive, got {self.to_dict()}")
        activation_fn(self.activation)

    @property
    def n_layers(self) -> int:
        return len(self.heads)

    def param_count(self) -> int:
        """Parameters a model of this shape has (the tied LM head counts once, as the embedding)."""
        d = self.d_model
        total = self.vocab_size * d + self.n_positions * d + 2 * d  # wte, wpe, ln_f
        for ffn, heads in zip(self.ffn_widths, self.heads, strict=True):
            attn = heads * self.head_dim
            total += 4 * d  # ln_1, ln_2
            total += d * 3 * attn + 3 * attn + attn * d + d  # qkv, out projection
            total += d * ffn + ffn + ffn * d + d  # fc, proj
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "vocab_size": self.vocab_size,
            "n_positions": self.n_positions,
            "d_model": self.d_model,
            "head_dim": self.head_dim,
            "ffn_widths": list(self.ffn_widths),
            "heads": list(self.heads),
            "activation": self.activation,
            "layer_norm_eps": self.layer_norm_eps,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> StandaloneDecoderConfig:
        if data.get("format") != FORMAT:
            raise ValueError(f"{source}: format {data.get('format')!r} is not {FORMAT!r}")
        data = {k: v for k, v in data.items() if k != "format"}
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{source}: unknown fields {unknown}; allowed: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(d_model, 3 * heads * head_dim)  # rows: all q, then all k, then all v
        self.proj = nn.Linear(heads * head_dim, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape
        q, k, v = self.qkv(x).view(batch, seq, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(batch, seq, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, d_model: int, ffn: int, activation: str) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, ffn)
        self.proj = nn.Linear(ffn, d_model)
        self.activation = activation_fn(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.activation(self.fc(x)))


class Block(nn.Module):
    def __init__(self, config: StandaloneDecoderConfig, ffn: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = Attention(config.d_model, heads, config.head_dim)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = MLP(config.d_model, ffn, config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class StandaloneDecoder(nn.Module):
    """Token + learned position embeddings -> pre-LN blocks -> final LN -> LM head tied to the token embedding."""

    def __init__(self, config: StandaloneDecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.n_positions, config.d_model)
        self.blocks = nn.ModuleList(Block(config, f, h) for f, h in zip(config.ffn_widths, config.heads, strict=True))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits, (batch, seq, vocab_size), for a (batch, seq) tensor of token ids."""
        check_input_ids(input_ids, self.config.vocab_size, self.config.n_positions)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions)
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)

    def save(self, directory: str | Path) -> Path:
        """Write `model.safetensors` + `config.json` (no pickle); each file lands whole (temp file, then rename)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {name: t.detach().contiguous() for name, t in self.state_dict().items()}
        staging = directory / f".{WEIGHTS_FILE}.tmp"
        save_file(state, str(staging), metadata={"format": "pt", "matta_format": FORMAT})
        umask = os.umask(0)  # safetensors creates the file 0o600: give it a plain open's mode
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)
        os.replace(staging, directory / WEIGHTS_FILE)
        staging = directory / f".{CONFIG_FILE}.tmp"
        staging.write_text(json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(staging, directory / CONFIG_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> StandaloneDecoder:
        """Rebuild a decoder written by `save` (safetensors + JSON: nothing is unpickled), in eval mode."""
        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} is missing: {directory} is not a saved matta decoder")
        config_path = directory / CONFIG_FILE
        config = StandaloneDecoderConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
        model = cls(config)
        model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
        return model.eval()
