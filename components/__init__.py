"""The pipeline's KFP components: one thin, typed wrapper per step of ``matta_core.steps``.

Each component imports matta_core *inside* its function (KFP ships only the function's source to the step's
process; the library comes from the project image, ``base_image=default_image_tag()``), calls
``tracked.start_task`` before anything else (it refuses to run in an image built from other code than the
pipeline's ``code_version``), parses its config sections from JSON parameters, and calls one function of
``matta_core.steps.tracked``, which runs the step and records it in MLflow. ``install_kfp_package=False``: the
image (and the dev environment) already has the same kfp, and skipping the pip check saves ~0.4 s per step.

Every component takes ``code_version`` (a compile-time constant: part of each task's cache key),
``tracking_uri`` + ``parent_run_id`` (the MLflow parent run; empty = tracking off), and ``task``
(``classification`` or ``causal_lm``: which model family the step works on; the step functions dispatch on it).

Do not add ``from __future__ import annotations`` to these modules: KFP reads the real annotation objects.
"""

from components.evaluate import evaluate_model
from components.extract import extract_width
from components.extract_evaluate import extract_and_evaluate
from components.prepare import prepare_data
from components.release import release_models
from components.report import write_report
from components.run_tracking import end_run, start_run
from components.teacher import cache_teacher_outputs
from components.train import train_models

#: `matta component <name>` names (the pipeline's step names) -> component.
COMPONENTS = {
    "prepare": prepare_data,
    "teacher": cache_teacher_outputs,
    "train": train_models,
    "extract": extract_width,
    "evaluate": evaluate_model,
    "report": write_report,
    "release": release_models,
}

#: Every component the pipeline's DAG runs (the steps above, the fused per-width task, the first and last tasks).
PIPELINE_COMPONENTS = {
    **COMPONENTS, "extract_and_evaluate": extract_and_evaluate, "start_run": start_run, "end_run": end_run,
}

__all__ = [
    "COMPONENTS",
    "PIPELINE_COMPONENTS",
    "cache_teacher_outputs",
    "end_run",
    "evaluate_model",
    "extract_and_evaluate",
    "extract_width",
    "prepare_data",
    "release_models",
    "start_run",
    "train_models",
    "write_report",
]
