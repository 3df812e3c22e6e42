"""The sandwich sampler's per-layer lower bounds (`TrainConfig.sample_low`), checked against a model's width slots."""

from __future__ import annotations

from matta_core.nested.widths import Widths, WidthSlot
from matta_core.training.config import TrainConfig


def sample_low_bounds(config: TrainConfig, slots: list[WidthSlot]) -> Widths:
    """Per-layer lower bounds of the sandwich sampler (default: each layer's min_width, below the Student)."""
    if config.sample_low is None:
        return tuple(slot.min_width for slot in slots)
    low = (config.sample_low,) * len(slots) if isinstance(config.sample_low, int) else tuple(config.sample_low)
    if len(low) != len(slots):
        raise ValueError(f"sample_low {list(low)} has {len(low)} entries; the model has {len(slots)} layers "
                         f"{[s.name for s in slots]}")
    for slot, lo in zip(slots, low, strict=True):
        if not slot.min_width <= lo <= slot.max_width:
            raise ValueError(f"sample_low for layer {slot.name} is {lo}; allowed {slot.min_width}..{slot.max_width}")
    return low
