"""Decoder width specs as written in configs and CLIs, and random sub-models for the sandwich rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from matta_core.families.decoder.config import DecoderConfig, DecoderWidths, flatten_widths
from matta_core.nested.widths import WidthError, sample_widths


def resolve_widths(config: DecoderConfig, spec: Any = None) -> DecoderWidths:
    """Turn a widths spec into validated per-layer pairs.

    Accepted specs: None or "ta" (the full model); "student"; a mapping {"ffn": int | list, "heads": int | list}
    (an int applies to every layer); or a sequence of (ffn_width, n_heads) pairs, one per layer (Mix'n'Match).
    """
    if spec is None or spec == "ta":
        return config.ta_widths
    if spec == "student":
        return config.student_widths
    if isinstance(spec, str):
        raise WidthError(
            f"decoder widths spec {spec!r} unknown; allowed: 'ta', 'student', "
            "{'ffn': ..., 'heads': ...}, or one [ffn_width, n_heads] pair per layer"
        )
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"ffn", "heads"})
        if unknown or not spec:
            raise WidthError(f"decoder widths spec keys {sorted(spec)} invalid; allowed keys: 'ffn', 'heads'")
        ffn = _per_layer(spec.get("ffn", [w.ffn for w in config.ta_widths]), config.n_layers, "ffn")
        heads = _per_layer(spec.get("heads", config.n_heads), config.n_layers, "heads")
        return config.check_widths(list(zip(ffn, heads, strict=True)))
    return config.check_widths(spec)


def sample_decoder_widths(
    config: DecoderConfig, generator: torch.Generator, low: DecoderWidths | None = None
) -> DecoderWidths:
    """Draw one Mix'n'Match sub-model: every block's FFN width and head count independently, log-uniform in
    [low, max] (default low: the config's minima), as `sample_widths` does for the classifier."""
    flat_low = None if low is None else flatten_widths(config.check_widths(low))
    return config.from_flat(sample_widths(config.width_slots(), generator, flat_low))


def _per_layer(value: Any, n_layers: int, key: str) -> list[Any]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n_layers
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != n_layers:
        raise WidthError(
            f"decoder widths spec '{key}' must be one int or {n_layers} values (one per layer), got {value!r}"
        )
    return list(value)
