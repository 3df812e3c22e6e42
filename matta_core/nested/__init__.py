"""Matryoshka building blocks: layers whose narrower widths are prefix slices of their weights."""

from matta_core.nested.linear import NestedLinear
from matta_core.nested.widths import WidthError, Widths, WidthSlot, sample_widths, validate_widths

__all__ = ["NestedLinear", "WidthError", "WidthSlot", "Widths", "sample_widths", "validate_widths"]
