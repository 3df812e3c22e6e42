"""Quality and cost of a causal LM on held-out text: perplexity, last-word cloze accuracy, serving cost.

A model is any `nn.Module` mapping int64 ids [B, T] to logits [B, T, V]: a `StandaloneDecoder`, a nested decoder at
widths (`NestedAtWidths`), the Teacher (`HFCausalLMLogits`). Ids come right-padded with lengths, as the causal-LM
Teacher caches them (`matta_core.families.decoder.tokens.encode_texts` builds the same). Each batch is cut to its
longest row, and since attention is causal, pad ids after a row's end cannot change the logits of its real positions,
which are the only ones scored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from matta_core.families.decoder.cloze import ClozeExample
from matta_core.families.decoder.cost import flops_per_token, model_params, serving_cost

RESULT_KEYS = (
    "test_perplexity",
    "test_nll",
    "test_tokens",
    "cloze_accuracy",
    "cloze_examples",
    "params",
    "flops_per_token",
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens_per_second",
)


class Perplexity(NamedTuple):
    """exp(mean next-token NLL), the mean NLL in nats, and the number of tokens scored."""

    perplexity: float
    nll: float
    tokens: int


class ClozeAccuracy(NamedTuple):
    """Share of examples whose every target token is the argmax, with the counts behind it."""

    accuracy: float
    correct: int
    examples: int


def perplexity(
    model: nn.Module, input_ids: torch.Tensor | np.ndarray, lengths: torch.Tensor | np.ndarray, batch_size: int = 16
) -> Perplexity:
    """Next-token perplexity over real tokens only: position t predicts token t + 1 for t + 1 < length.

    A row's first token has no prediction, so a row of n tokens contributes n - 1; rows of 0 or 1 tokens add none.
    """
    ids, lens = _as_ids(input_ids, lengths)
    total, count = 0.0, 0
    with _inference(model):
        for start in range(0, ids.shape[0], _positive("batch_size", batch_size)):
            batch_lens = lens[start : start + batch_size]
            width = int(batch_lens.max())
            if width < 2:
                continue
            batch = ids[start : start + batch_size, :width]
            logp = F.log_softmax(model(batch)[:, :-1].float(), dim=-1)
            picked = logp.gather(-1, batch[:, 1:].unsqueeze(-1)).squeeze(-1)
            real = torch.arange(width - 1) < (batch_lens - 1).unsqueeze(1)
            total -= float(picked[real].double().sum())
            count += int(real.sum())
    if count == 0:
        raise ValueError("no tokens to score: every row has fewer than 2 real tokens")
    nll = total / count
    return Perplexity(math.exp(nll), nll, count)


def cloze_accuracy(
    model: nn.Module, examples: Iterable[ClozeExample], batch_size: int = 16, pad_id: int = 0
) -> ClozeAccuracy:
    """Share of `examples` where the argmax at every target position is the target token (one teacher-forced
    pass over the whole passage; a multi-token word counts only if all its tokens are right)."""
    items = list(examples)
    if not items:
        raise ValueError("no cloze examples to score")
    correct = 0
    with _inference(model):
        for start in range(0, len(items), _positive("batch_size", batch_size)):
            chunk = items[start : start + batch_size]
            width = max(len(e.input_ids) for e in chunk)
            batch = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            for j, e in enumerate(chunk):
                batch[j, : len(e.input_ids)] = torch.tensor(e.input_ids)
            predicted = model(batch).argmax(-1)
            for j, e in enumerate(chunk):
                end = len(e.input_ids)
                # Logits at position t predict token t + 1: target tokens start..end-1 come from start-1..end-2.
                hits = predicted[j, e.target_start - 1 : end - 1] == batch[j, e.target_start : end]
                correct += bool(hits.all())
    return ClozeAccuracy(correct / len(items), correct, len(items))


def evaluate_lm(
    model: nn.Module,
    *,
    input_ids: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray,
    cloze_examples: Iterable[ClozeExample] | None = None,
    batch_size: int = 16,
    seq_len: int | None = None,
    measure_speed: bool = True,
    latency_batch_size: int = 8,
    repeats: int = 10,
    threads: int | None = None,
) -> dict[str, Any]:
    """One flat record of quality and cost; always the keys of `RESULT_KEYS` (None where not measured) plus
    `seq_len` and `threads`.

    `seq_len` (default: the width of `input_ids`) is the context length FLOPs and latency are reported at.
    `measure_speed=False` skips the timing (latency keys None) but still reports params and FLOPs.
    """
    ids, lens = _as_ids(input_ids, lengths)
    seq_len = int(seq_len or ids.shape[1])
    ppl = perplexity(model, ids, lens, batch_size)
    cloze = None if cloze_examples is None else cloze_accuracy(model, cloze_examples, batch_size)
    record: dict[str, Any] = {
        "test_perplexity": ppl.perplexity,
        "test_nll": ppl.nll,
        "test_tokens": ppl.tokens,
        "cloze_accuracy": None if cloze is None else cloze.accuracy,
        "cloze_examples": 0 if cloze is None else cloze.examples,
        "params": model_params(model),
        "flops_per_token": flops_per_token(model, seq_len),
        "latency_p50_ms": None,
        "latency_p95_ms": None,
        "tokens_per_second": None,
        "seq_len": seq_len,
        "threads": threads or torch.get_num_threads(),
    }
    if measure_speed:
        with _inference(model):
            cost = serving_cost(model, seq_len, latency_batch_size, repeats=repeats, threads=threads)
        record.update({k: cost[k] for k in ("latency_p50_ms", "latency_p95_ms", "tokens_per_second", "threads")})
    return record


@contextmanager
def _inference(model: nn.Module) -> Iterator[None]:
    # Evaluation may run mid-training: eval mode (no dropout) for the measurement, then the caller's mode back.
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _as_ids(input_ids: torch.Tensor | np.ndarray, lengths: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, ...]:
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    lens = torch.as_tensor(lengths, dtype=torch.long)
    if ids.dim() != 2 or lens.shape != (ids.shape[0],):
        raise ValueError(f"input_ids must be [n, T] and lengths [n]; got {tuple(ids.shape)} and {tuple(lens.shape)}")
    if ids.shape[0] == 0:
        raise ValueError("no rows to evaluate")
    if int(lens.min()) < 0 or int(lens.max()) > ids.shape[1]:
        raise ValueError(f"lengths must be in 0..{ids.shape[1]} (the width of input_ids)")
    return ids, lens


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
