"""Evaluation of servable models: quality metrics, serving cost, the Pareto front, and the chart of both."""

from matta_core.evaluation.cost import (
    LatencyStats,
    ParamCount,
    ThroughputStats,
    analytic_flops_per_example,
    measure_latency,
    measure_throughput,
    param_count,
)
from matta_core.evaluation.evaluate import ModelEvaluation, evaluate_model, evaluate_widths, mark_pareto
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
    "ModelEvaluation",
    "ParamCount",
    "ThroughputStats",
    "accuracy",
    "analytic_flops_per_example",
    "classification_report",
    "evaluate_model",
    "evaluate_widths",
    "expected_calibration_error",
    "macro_f1",
    "mark_pareto",
    "measure_latency",
    "measure_throughput",
    "nll",
    "param_count",
    "pareto_chart",
    "pareto_front",
    "top_k_accuracy",
]
