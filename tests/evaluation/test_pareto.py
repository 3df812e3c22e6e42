"""The Pareto front on hand-made point sets: dominance, ties, input forms and errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from matta_core.evaluation.pareto import pareto_front, pareto_indices


def names(points: list[dict]) -> list[str]:
    return [p["name"] for p in points]


def point(name: str, cost: float, quality: float) -> dict:
    return {"name": name, "cost": cost, "acc": quality}


def test_dominated_points_are_dropped_and_the_front_is_ordered_by_cost() -> None:
    points = [
        point("big", 10, 0.90),
        point("mid", 5, 0.85),
        point("worse-mid", 6, 0.80),  # costs more than mid and is worse
        point("small", 1, 0.70),
        point("useless", 12, 0.88),  # costs more than big and is worse
        point("best", 20, 0.95),
    ]
    assert names(pareto_front(points, "cost", "acc")) == ["small", "mid", "big", "best"]


def test_equal_cost_keeps_only_the_better_and_equal_quality_only_the_cheaper() -> None:
    points = [point("a", 5, 0.8), point("b", 5, 0.9), point("c", 7, 0.9), point("d", 3, 0.5)]
    # b dominates a (same cost, better); b dominates c (same quality, cheaper).
    assert names(pareto_front(points, "cost", "acc")) == ["d", "b"]


def test_exact_ties_keep_the_first_in_input_order() -> None:
    first = [point("x", 2, 0.7), point("y", 2, 0.7), point("z", 1, 0.6)]
    assert names(pareto_front(first, "cost", "acc")) == ["z", "x"]
    swapped = [first[1], first[0], first[2]]
    assert names(pareto_front(swapped, "cost", "acc")) == ["z", "y"]


def test_edge_cases() -> None:
    assert pareto_front([], "cost", "acc") == []
    assert names(pareto_front([point("only", 1, 0.1)], "cost", "acc")) == ["only"]
    # A point that is cheapest and best dominates everything else.
    assert names(pareto_front([point("p", 3, 0.5), point("q", 1, 0.9)], "cost", "acc")) == ["q"]
    assert pareto_indices([3.0, 2.0, 1.0], [3.0, 2.0, 1.0]) == [2, 1, 0]


def test_objects_with_attributes_are_accepted() -> None:
    @dataclass
    class Model:
        name: str
        flops: float
        accuracy: float

    models = [Model("a", 2.0, 0.5), Model("b", 1.0, 0.6)]
    assert pareto_front(models, "flops", "accuracy") == [models[1]]


def test_missing_or_non_finite_values_are_rejected() -> None:
    with pytest.raises(KeyError, match="point 1 has no 'acc'"):
        pareto_front([point("a", 1, 0.5), {"name": "b", "cost": 2}], "cost", "acc")
    with pytest.raises(ValueError, match="point 0: acc is nan"):
        pareto_front([point("a", 1, float("nan"))], "cost", "acc")
    with pytest.raises(ValueError, match="cost is None"):
        pareto_front([{"name": "a", "cost": None, "acc": 0.5}], "cost", "acc")
    with pytest.raises(ValueError, match="2 costs but 1 qualities"):
        pareto_indices([1.0, 2.0], [0.5])
