"""Serving cost of a causal LM: parameters, analytic FLOPs per token, measured batch latency and tokens/s.

FLOPs count matrix products only, a multiply-add as 2 (the convention of `matta_core.evaluation.cost`). For one
token at context length T (the cost of the T-th token; the mean over a whole sequence is lower, with T ~ (T+1)/2):

    per block, with A = heads * head_dim attention width and f the FFN width:
        2 * d * 3A   (q, k, v)  +  2 * A * d  (attention output)  +  4 * A * T  (q.k scores and the weighted
        sum of v over T keys)  +  2 * d * f  +  2 * f * d  (FFN)
    plus 2 * d * V for the LM head (tied to the embedding: its lookup is free, its product is not).

Embedding lookups, biases, LayerNorms, activations and the softmax are O(d) or O(T) and left out. A Llama-style
model (the SmolLM2 Teacher) has grouped k/v (2 * d * 2 * kv_heads * head_dim) and a gated FFN (3 * 2 * d * f).

Timing reuses the classifier's `time_calls` (eval mode, `torch.inference_mode()`, `perf_counter_ns`, inputs built
before the clock starts). Threads are the caller's `torch.get_num_threads()` unless `threads=` is given, which is
set for the measurement only; either way the number used is recorded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from matta_core.evaluation.cost import LatencyStats, param_count, time_calls
from matta_core.families.decoder.standalone import StandaloneDecoderConfig
from matta_core.families.decoder.wrappers import HFCausalLMLogits, decoder_shape


def decoder_flops_per_token(config: StandaloneDecoderConfig, seq_len: int) -> float:
    """FLOPs of one token at context length `seq_len` through a decoder of this shape (module docstring)."""
    _check_seq_len(seq_len)
    d = config.d_model
    flops = 2.0 * d * config.vocab_size
    for ffn, heads in zip(config.ffn_widths, config.heads, strict=True):
        attn = heads * config.head_dim
        flops += 2.0 * d * 3 * attn + 2.0 * attn * d + 4.0 * attn * seq_len + 4.0 * d * ffn
    return flops


def llama_flops_per_token(hf_config: Any, seq_len: int) -> float:
    """The same count for a Hugging Face Llama-style config (grouped k/v, gated FFN), e.g. the SmolLM2 Teacher."""
    _check_seq_len(seq_len)
    d, heads = int(hf_config.hidden_size), int(hf_config.num_attention_heads)
    kv_heads = int(getattr(hf_config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(hf_config, "head_dim", None) or d // heads)
    attn, kv = heads * head_dim, kv_heads * head_dim
    per_block = 2.0 * d * attn + 2.0 * d * 2 * kv + 2.0 * attn * d + 4.0 * attn * seq_len
    per_block += 3 * 2.0 * d * int(hf_config.intermediate_size)
    return int(hf_config.num_hidden_layers) * per_block + 2.0 * d * int(hf_config.vocab_size)


def model_params(model: nn.Module) -> int:
    """Parameters of what would be served: the sub-model's for a nested decoder at widths, else the module's."""
    shape = decoder_shape(model)
    return shape.param_count() if shape is not None else param_count(model).total


def flops_per_token(model: nn.Module, seq_len: int) -> float | None:
    """Analytic FLOPs per token for the project's decoders and Llama-style HF models; None for other modules."""
    shape = decoder_shape(model)
    if shape is not None:
        return decoder_flops_per_token(shape, seq_len)
    if isinstance(model, HFCausalLMLogits) and hasattr(model.config, "intermediate_size"):
        return llama_flops_per_token(model.config, seq_len)
    return None


def serving_cost(
    model: nn.Module,
    seq_len: int,
    batch_size: int = 8,
    *,
    repeats: int = 10,
    warmup: int = 2,
    vocab_size: int | None = None,
    threads: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Params, FLOPs per token and the latency of whole `[batch_size, seq_len]` forward passes on random ids.

    Keys: `params`, `flops_per_token`, `latency_p50_ms`, `latency_p95_ms`, `latency_mean_ms` (per batch),
    `tokens_per_second` (batch_size * seq_len / median batch time), `batch_size`, `seq_len`, `repeats`, `threads`.
    `vocab_size` is needed only for modules whose vocabulary cannot be read from their config.
    """
    _check_seq_len(seq_len)
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"batch_size and repeats must be >= 1, warmup >= 0; got {batch_size}, {repeats}, {warmup}")
    vocab = vocab_size or _vocab_size(model)
    generator = torch.Generator().manual_seed(seed)
    batch = (torch.randint(0, vocab, (batch_size, seq_len), generator=generator),)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        used = torch.get_num_threads()
        time_calls(model, [batch] * warmup)  # first calls pay for allocations a serving process pays once
        samples = time_calls(model, [batch] * repeats)
    finally:
        torch.set_num_threads(previous)
    latency = LatencyStats.from_samples(samples, threads=used)
    median_s = float(np.median(samples)) / 1e9
    return {
        "params": model_params(model),
        "flops_per_token": flops_per_token(model, seq_len),
        "latency_p50_ms": latency.p50_ms,
        "latency_p95_ms": latency.p95_ms,
        "latency_mean_ms": latency.mean_ms,
        "tokens_per_second": batch_size * seq_len / median_s,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "repeats": repeats,
        "threads": used,
    }


def _vocab_size(model: nn.Module) -> int:
    shape = decoder_shape(model)
    if shape is not None:
        return shape.vocab_size
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "vocab_size", None):
        return int(config.vocab_size)
    raise ValueError(f"cannot tell the vocabulary size of a {type(model).__name__}; pass vocab_size=")


def _check_seq_len(seq_len: int) -> None:
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
