"""Serving cost of a model: parameters, analytic FLOPs, and measured CPU latency and throughput.

Two conventions matter when comparing sub-models:

- **Parameters** are split into the embedding table and the rest ("dense": the MLP blocks and the head). A hashed
  2^18 x 128 table holds ~33.5M parameters and dwarfs any MLP, yet a query touches only its own ~tokens x dim rows
  of it; so the total hides the differences between widths, which all live in the dense part.
- **FLOPs** count a multiply-add as 2 (see `analytic_flops_per_example`).

Timing runs whatever `torch.get_num_threads()` the caller set (it is recorded in the results, never changed here),
under `torch.inference_mode()`, with `time.perf_counter_ns`. Inputs are built before the clock starts, so only the
model call is timed; callers pass the same inputs to every model they compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn

# What a model call takes: positional arguments (a StandaloneClassifier's `ids, offsets, counts[, dense]`).
ModelInputs = tuple[Any, ...]


@dataclass(frozen=True)
class ParamCount:
    """Trainable parameters: all of them, the embedding tables', and the rest ("dense": MLP blocks and head)."""

    total: int
    embedding: int
    dense: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def param_count(module: nn.Module) -> ParamCount:
    """Count `module`'s trainable parameters, with `nn.Embedding`/`nn.EmbeddingBag` weights reported apart.

    Buffers (such as the IDF vector) are not parameters and are not counted; a compact (served) embedding table's
    stored values are, as embedding parameters.
    """
    embedding_ids: set[int] = set()
    embedding = compact = 0
    for sub in module.modules():
        # A compact (served) table stores its rows as buffers, not trainable parameters: count its stored values.
        stored = getattr(sub, "stored_values", None)
        if callable(stored):
            compact += int(stored())
        if isinstance(sub, nn.Embedding | nn.EmbeddingBag):
            for param in sub.parameters(recurse=False):
                if param.requires_grad and id(param) not in embedding_ids:
                    embedding_ids.add(id(param))
                    embedding += param.numel()
    # module.parameters() de-duplicates shared (tied) tensors, so nothing is counted twice.
    total = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return ParamCount(total=total + compact, embedding=embedding + compact, dense=total - embedding)


def analytic_flops_per_example(
    hidden_widths: Sequence[int],
    embed_dim: int,
    num_dense: int,
    num_classes: int,
    avg_active_ngrams: float,
) -> float:
    """Floating-point operations for one example's forward pass, counting each multiply-add as 2 FLOPs.

    - Bag: `2 * avg_active_ngrams * embed_dim` (each active n-gram's row is scaled by its TF-IDF weight and added).
    - Each Linear `in -> out` (hidden blocks, then the head): `2 * in * out`.

    Bias adds, activations, the TF-IDF weight computation and the softmax are O(width) or O(n-grams) and are left
    out, as in the usual convention of counting matrix products only. The result is a float because
    `avg_active_ngrams` is an average over a dataset.
    """
    widths = [int(w) for w in hidden_widths]
    if any(w < 1 for w in widths) or embed_dim < 1 or num_dense < 0 or num_classes < 1:
        raise ValueError(
            f"sizes must be positive (num_dense >= 0): hidden_widths={widths}, embed_dim={embed_dim}, "
            f"num_dense={num_dense}, num_classes={num_classes}"
        )
    if not avg_active_ngrams >= 0:
        raise ValueError(f"avg_active_ngrams must be >= 0, got {avg_active_ngrams}")
    flops = 2.0 * avg_active_ngrams * embed_dim
    dims = [embed_dim + num_dense, *widths, num_classes]
    for d_in, d_out in pairwise(dims):
        flops += 2.0 * d_in * d_out
    return flops


@dataclass(frozen=True)
class LatencyStats:
    """Batch-1 latency over many single-example calls, in milliseconds."""

    p50_ms: float
    p95_ms: float
    mean_ms: float
    calls: int
    threads: int
    batch_size: int = 1

    @classmethod
    def from_samples(cls, samples_ns: Sequence[int], threads: int | None = None) -> LatencyStats:
        """Summarise per-call timings in nanoseconds (e.g. collected over interleaved rounds)."""
        if len(samples_ns) == 0:
            raise ValueError("no latency samples to summarise")
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        return cls(
            p50_ms=float(np.percentile(ms, 50)),
            p95_ms=float(np.percentile(ms, 95)),
            mean_ms=float(ms.mean()),
            calls=int(ms.size),
            threads=torch.get_num_threads() if threads is None else threads,
        )

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class ThroughputStats:
    """Examples per second at a fixed batch size, from the median time of repeated whole-batch calls."""

    examples_per_s: float
    batch_size: int
    median_batch_ms: float
    repeats: int
    threads: int

    @classmethod
    def from_samples(cls, samples_ns: Sequence[int], batch_size: int, threads: int | None = None) -> ThroughputStats:
        """Summarise per-batch timings in nanoseconds; the median resists the odd slow call (GC, scheduler)."""
        if len(samples_ns) == 0:
            raise ValueError("no throughput samples to summarise")
        median_ms = float(np.median(np.asarray(samples_ns, dtype=np.float64))) / 1e6
        return cls(
            examples_per_s=batch_size / (median_ms / 1e3),
            batch_size=batch_size,
            median_batch_ms=median_ms,
            repeats=len(samples_ns),
            threads=torch.get_num_threads() if threads is None else threads,
        )

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def time_calls(model: nn.Module, inputs: Sequence[ModelInputs]) -> list[int]:
    """Nanoseconds of each `model(*args)` call over `inputs`, in eval mode under `torch.inference_mode()`.

    No warm-up here: callers that interleave several models warm each one up once, then call this per round.
    """
    model.eval()
    samples = []
    with torch.inference_mode():
        for args in inputs:
            start = time.perf_counter_ns()
            model(*args)
            samples.append(time.perf_counter_ns() - start)
    return samples


def measure_latency(
    model: nn.Module,
    batch_fn: Callable[[int], ModelInputs],
    num_examples: int = 200,
    warmup: int = 20,
) -> LatencyStats:
    """p50 / p95 / mean milliseconds of single-example calls `model(*batch_fn(i))` for `i < num_examples`.

    `batch_fn(i)` must return example i's inputs as a batch of one; all are built before timing starts. The first
    `warmup` calls (on the first examples, cycling) are run and discarded: they pay for lazy allocations and cold
    caches that a serving process pays once.
    """
    if num_examples < 1 or warmup < 0:
        raise ValueError(f"num_examples must be >= 1 and warmup >= 0, got {num_examples} and {warmup}")
    inputs = [batch_fn(i) for i in range(num_examples)]
    time_calls(model, [inputs[i % num_examples] for i in range(warmup)])
    return LatencyStats.from_samples(time_calls(model, inputs))


def measure_throughput(model: nn.Module, batch: ModelInputs, repeats: int = 20, warmup: int = 3) -> ThroughputStats:
    """Examples per second of `model(*batch)` (use batch 256 and the same batch for every model compared).

    The batch size is read from the output's first dimension, so it cannot disagree with what was run.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    model.eval()
    with torch.inference_mode():
        batch_size = int(model(*batch).shape[0])
    time_calls(model, [batch] * warmup)
    return ThroughputStats.from_samples(time_calls(model, [batch] * repeats), batch_size)
