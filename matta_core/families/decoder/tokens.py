"""The tokenizer seam: any object with HF's `encode(text, add_special_tokens=...)` (or `__call__` returning
`{"input_ids": ...}`), and fixed-width id batches laid out as the causal-LM Teacher caches them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def token_ids(tokenizer: Any, text: str, *, add_special_tokens: bool = True) -> list[int]:
    """The ids `tokenizer` gives `text` (HF `encode`, else `tokenizer(text)["input_ids"]`)."""
    if hasattr(tokenizer, "encode"):
        ids = tokenizer.encode(text, add_special_tokens=add_special_tokens)
    elif callable(tokenizer):
        ids = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
    else:
        raise TypeError(f"tokenizer {type(tokenizer).__name__} has neither encode() nor __call__")
    return [int(i) for i in ids]


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int,
    add_special_tokens: bool = True,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(`input_ids` int64 [n, max_length], `lengths` int64 [n]): truncated to `max_length`, right-padded.

    The same layout as `CausalLMTeacher`'s cache, so evaluation reads Teacher-cached ids and these alike.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    ids = torch.full((len(texts), max_length), pad_id, dtype=torch.long)
    lengths = torch.zeros(len(texts), dtype=torch.long)
    for i, text in enumerate(texts):
        row = token_ids(tokenizer, text, add_special_tokens=add_special_tokens)[:max_length]
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        lengths[i] = len(row)
    return ids, lengths
