"""Evaluation of servable models: quality metrics, serving cost, the Pareto front, and the chart of both.

Names are imported on first use (`matta_core.lazy_exports`): the report task reads only the Pareto front and the
chart, and must not import torch for the metrics and cost modules beside them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matta_core.lazy_exports import lazy_exports

# Exported names -> the module that defines them, imported on first use.
_EXPORTS = {
    "LatencyStats": "matta_core.evaluation.cost",
    "ParamCount": "matta_core.evaluation.cost",
    "ThroughputStats": "matta_core.evaluation.cost",
    "analytic_flops_per_example": "matta_core.evaluation.cost",
    "measure_latency": "matta_core.evaluation.cost",
    "measure_throughput": "matta_core.evaluation.cost",
    "param_count": "matta_core.evaluation.cost",
    "MetricError": "matta_core.evaluation.metrics",
    "accuracy": "matta_core.evaluation.metrics",
    "classification_report": "matta_core.evaluation.metrics",
    "expected_calibration_error": "matta_core.evaluation.metrics",
    "macro_f1": "matta_core.evaluation.metrics",
    "nll": "matta_core.evaluation.metrics",
    "top_k_accuracy": "matta_core.evaluation.metrics",
    "pareto_front": "matta_core.evaluation.pareto",
    "pareto_chart": "matta_core.evaluation.plots",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from matta_core.evaluation.cost import (
        LatencyStats,
        ParamCount,
        ThroughputStats,
        analytic_flops_per_example,
        measure_latency,
        measure_throughput,
        param_count,
    )
    from matta_core.evaluation.metrics import (
        MetricError,
        accuracy,
        classification_report,
        expected_calibration_error,
        macro_f1,
        nll,
        top_k_accuracy,
    )
    from matta_core.evaluation.pareto import pareto_front
    from matta_core.evaluation.plots import pareto_chart

__all__ = [
    "LatencyStats",
    "MetricError",
    "ParamCount",
    "ThroughputStats",
    "accuracy",
    "analytic_flops_per_example",
    "classification_report",
    "expected_calibration_error",
    "macro_f1",
    "measure_latency",
    "measure_throughput",
    "nll",
    "param_count",
    "pareto_chart",
    "pareto_front",
    "top_k_accuracy",
]
