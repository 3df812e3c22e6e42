"""The quality-vs-cost chart of extracted sub-models, with the Pareto front drawn through the worth-serving ones.

matplotlib is imported inside `pareto_chart`, so the rest of `matta_core.evaluation` works without it. The chart
is drawn on a bare `Figure` with the Agg canvas: no pyplot, no global backend switch, no display needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matta_core.evaluation.pareto import pareto_front

COST_LABELS = {
    "flops_per_example": "FLOPs per example (multiply-add = 2)",
    "params": "parameters (incl. embedding table)",
    "dense_params": "parameters without the embedding table",
    "latency_p50_ms": "p50 latency at batch 1 (ms)",
}
# Log scale once costs span more than this factor; sub-model widths usually halve step by step.
LOG_SCALE_SPAN = 8.0


def _record(point: Any) -> dict[str, Any]:
    return point.to_dict() if hasattr(point, "to_dict") else dict(point)


def pareto_chart(
    evaluations: Sequence[Any],
    path: str | Path,
    cost: str = "flops_per_example",
    quality: str = "accuracy",
    reference_lines: Mapping[str, float] | None = None,
    title: str | None = None,
    higher_is_better: bool = True,
    log_quality: bool = False,
) -> Path:
    """Write a PNG of `quality` against `cost` for `evaluations` (`ModelEvaluation`s or their `to_dict()`s).

    Every model is a labelled point; the Pareto front (lower cost, higher quality) is joined by a line.
    `reference_lines` maps a label to a quality drawn as a horizontal line, e.g. `{"Teacher": 0.93}`.
    `higher_is_better=False` for a loss-like quality (perplexity), `log_quality` for a log-scale quality axis
    (perplexities of a Teacher and of tiny Students differ by orders of magnitude).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("pareto_chart needs matplotlib: pip install matplotlib") from error
    records = [_record(e) for e in evaluations]
    if not records:
        raise ValueError("no evaluations to plot")
    # Also checks that every point has a finite cost and quality.
    front = pareto_front(records, cost, quality, higher_is_better=higher_is_better)
    on_front = {id(r) for r in front}

    figure = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    others = [r for r in records if id(r) not in on_front]
    if others:  # an empty scatter would still add a "dominated" legend entry
        axes.scatter(
            [r[cost] for r in others], [r[quality] for r in others], color="tab:gray", label="dominated", zorder=2
        )
    axes.plot(
        [r[cost] for r in front], [r[quality] for r in front], "o-", color="tab:blue", label="Pareto front", zorder=3
    )
    for r in records:
        axes.annotate(
            str(r.get("name", "")), (r[cost], r[quality]), textcoords="offset points", xytext=(4, 4), fontsize=8
        )
    for i, (label, value) in enumerate((reference_lines or {}).items()):
        axes.axhline(value, linestyle="--", linewidth=1, color=f"C{(i + 2) % 10}", label=f"{label} ({value:.3g})")
    costs = [float(r[cost]) for r in records]
    if min(costs) > 0 and max(costs) / min(costs) > LOG_SCALE_SPAN:
        axes.set_xscale("log")
    if log_quality:
        axes.set_yscale("log")
    axes.set_xlabel(COST_LABELS.get(cost, cost))
    axes.set_ylabel(quality)
    axes.set_title(title or f"{quality} vs {cost}")
    axes.grid(True, alpha=0.3)
    # Lower right is where a higher-is-better chart is empty; a lower-is-better one has no such corner.
    axes.legend(loc="lower right" if higher_is_better else "best", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
