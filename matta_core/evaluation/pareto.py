"""The cost/quality Pareto front: the sub-models worth serving, because none is both cheaper and better.

A point dominates another if its cost is lower or equal *and* its quality higher or equal, with at least one of the
two strict. Exact ties (same cost and same quality) dominate neither way; of those, only the first in input order is
kept, so the front never lists two interchangeable models and the choice does not depend on sorting details.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

Point = TypeVar("Point")


def _value(point: Any, key: str, index: int) -> float:
    """`point[key]` for mappings, `point.key` otherwise, checked to be a finite number."""
    try:
        value = point[key] if isinstance(point, Mapping) else getattr(point, key)
    except (KeyError, AttributeError):
        raise KeyError(f"point {index} has no {key!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"point {index}: {key} is {value!r}; a finite number is needed to rank points")
    return float(value)


def pareto_indices(costs: Sequence[float], qualities: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, ordered by increasing cost (lower cost, higher quality is better)."""
    if len(costs) != len(qualities):
        raise ValueError(f"{len(costs)} costs but {len(qualities)} qualities")
    # Cheapest first; at equal cost the best quality first; then input order, which settles exact ties.
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -qualities[i], i))
    front: list[int] = []
    best = -math.inf
    for i in order:
        # Everything before i costs no more; i survives only if it is strictly better than all of them.
        if qualities[i] > best:
            front.append(i)
            best = qualities[i]
    return front


def pareto_front(
    points: Sequence[Point], cost_key: str, quality_key: str, *, higher_is_better: bool = True
) -> list[Point]:
    """The non-dominated `points` (mappings or objects with those attributes), ordered by increasing cost.

    `higher_is_better=False` for a quality measured as a loss (perplexity): lower is then better.
    """
    costs = [_value(p, cost_key, i) for i, p in enumerate(points)]
    sign = 1.0 if higher_is_better else -1.0
    qualities = [sign * _value(p, quality_key, i) for i, p in enumerate(points)]
    return [points[i] for i in pareto_indices(costs, qualities)]
