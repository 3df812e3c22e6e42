"""Width specifications: which prefix of each nestable dimension a sub-model keeps.

A nested model declares its nestable dimensions as an ordered list of `WidthSlot`s (an MLP: one slot per hidden
layer; a transformer later: one slot per FFN and per attention-head count). A sub-model is a `Widths` tuple with
one integer per slot. The TA is the tuple of maxima, the Student a declared smaller tuple, and any tuple in
between is a valid Mix'n'Match sub-model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

Widths = tuple[int, ...]


class WidthError(ValueError):
    """A width specification that the model cannot run; the message names the slot and what is allowed."""


@dataclass(frozen=True)
class WidthSlot:
    """One nestable dimension: its name (as in the module tree), its largest and smallest allowed width."""

    name: str
    max_width: int
    min_width: int = 1


def validate_widths(slots: Sequence[WidthSlot], widths: Sequence[int]) -> Widths:
    """Return `widths` as a tuple after checking it against `slots`, or raise `WidthError` saying why."""
    if isinstance(widths, int | str | bytes):
        raise WidthError(f"widths must be a sequence with one integer per layer {[s.name for s in slots]}")
    widths = tuple(widths)
    if len(widths) != len(slots):
        raise WidthError(
            f"widths {list(widths)} has {len(widths)} entries but the model has {len(slots)} nestable "
            f"layers {[s.name for s in slots]}: give one width per layer"
        )
    for slot, width in zip(slots, widths, strict=True):
        if isinstance(width, bool) or not isinstance(width, int):
            raise WidthError(f"layer {slot.name}: width {width!r} is not an integer")
        if not slot.min_width <= width <= slot.max_width:
            raise WidthError(
                f"layer {slot.name}: asked width {width}, allowed {slot.min_width}..{slot.max_width}"
            )
    return widths


def sample_widths(
    slots: Sequence[WidthSlot], generator: torch.Generator, low: Sequence[int] | None = None
) -> Widths:
    """Draw one Mix'n'Match sub-model: each slot's width log-uniform in [low, max], independently per slot.

    Log-uniform because quality changes with the ratio of widths, not their difference: uniform draws would
    almost never visit the narrow end, which is where sub-models collapse without training signal.
    """
    low = [s.min_width for s in slots] if low is None else list(low)
    widths = []
    for slot, lo in zip(slots, low, strict=True):
        lo = max(slot.min_width, min(lo, slot.max_width))
        u = float(torch.rand((), generator=generator))
        log_w = math.log(lo) + u * (math.log(slot.max_width) - math.log(lo))
        widths.append(int(min(slot.max_width, max(lo, round(math.exp(log_w))))))
    return tuple(widths)
