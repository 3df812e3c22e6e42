"""The MatTA pipeline: prepare -> Teacher cache -> train (TA+Student, baselines) -> per width: extract, evaluate
-> evaluate the baselines -> report, and release (gate, register @challenger, A/B handoff).

::

    prepare_data ─► cache_teacher_outputs ─► train_models ─┬─► ParallelFor(widths): extract_width ─► evaluate_model ─┐
                                                           └─► ParallelFor(baselines): evaluate_model ───────────────┤
                                       (teacher) ────────────────────────────────────────────► write_report ◄─ Collected
                   (prepared, teacher, trained, width models) ──────────────────────────► release_models ◄─ Collected

Parameters (each settable on a cluster run): ``task`` (``classification`` or ``causal_lm``: the model family;
every step receives it and dispatches on it, so one DAG and one set of components serve both), the config
sections as JSON (``data_json``, ``teacher_json``, ``model_json``, ``train_json``, ``release_json``: the
`PipelineConfig` sections, validated again by each step), ``widths`` (the widths to extract: per-layer ints, or one
[ffn_width, n_heads] pair per block for ``causal_lm``), ``cache_dir``, ``measure_speed``, and the MLflow
``tracking_uri`` + ``parent_run_id`` (empty = no tracking; the release step then registers nothing and says so).
The MLflow parent run id is also the release's ``pipeline_run_id``, the idempotency key of registration: a retried
release task registers nothing new. Sections rather than one config document: a step receives only the sections it
reads, so changing, say, ``train.lr`` leaves the prepare and Teacher steps' cache keys unchanged. The evaluations
also read the Teacher's folder: a causal LM is scored on the token ids the Teacher read.
`pipeline_arguments` turns a validated `PipelineConfig` into these parameters.
"""

# No `from __future__ import annotations` here: KFP reads the pipeline function's annotation objects.
from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset
from kfp.dsl.graph_component import GraphComponent

from components import (
    cache_teacher_outputs,
    evaluate_model,
    extract_width,
    prepare_data,
    release_models,
    train_models,
    write_report,
)
from matta_core.config import PipelineConfig
from pipelines.code_version import code_version as current_code_version

PIPELINE_NAME = "matta"
_DEFAULTS = PipelineConfig()


class PipelineOutputs(NamedTuple):
    """What a run of the pipeline returns: the report folder, its HTML view, and the release folder (gate report,
    decisions, A/B handoffs)."""

    report: Dataset
    report_html: HTML
    release: Dataset


def build_pipeline(code_version: str) -> GraphComponent:
    """The pipeline with `code_version` baked into every task's inputs (and so into every cache key)."""

    @dsl.pipeline(name=PIPELINE_NAME, description="MatTA: elastic Student models by Teacher-TA-Student distillation")
    def matta_pipeline(
        task: str = _DEFAULTS.task,
        data_json: str = _DEFAULTS.data.model_dump_json(),
        teacher_json: str = _DEFAULTS.teacher.model_dump_json(),
        model_json: str = _DEFAULTS.model.model_dump_json(),
        train_json: str = _DEFAULTS.train.model_dump_json(),
        release_json: str = _DEFAULTS.release.model_dump_json(),
        widths: list = _DEFAULTS.widths,  # a KFP parameter default (compiled into the YAML), never mutated
        cache_dir: str = _DEFAULTS.cache_dir,
        measure_speed: bool = _DEFAULTS.measure_speed,
        tracking_uri: str = "",
        parent_run_id: str = "",
    ) -> PipelineOutputs:
        common: dict[str, Any] = {
            "task": task, "code_version": code_version, "tracking_uri": tracking_uri, "parent_run_id": parent_run_id,
        }
        prepare = prepare_data(data_json=data_json, **common).set_display_name("prepare")
        prepared = prepare.outputs["prepared"]
        teacher = cache_teacher_outputs(
            prepared=prepared, data_json=data_json, teacher_json=teacher_json, cache_dir=cache_dir, **common
        ).set_display_name("teacher")
        train = train_models(
            prepared=prepared, teacher=teacher.outputs["teacher"], data_json=data_json, model_json=model_json,
            train_json=train_json, **common,
        ).set_display_name("train")
        trained = train.outputs["trained"]

        with dsl.ParallelFor(widths, name="widths") as width:
            extract = extract_width(
                trained=trained, prepared=prepared, widths=width, data_json=data_json, **common
            ).set_display_name("extract")
            evaluate = evaluate_model(
                model=extract.outputs["model"], prepared=prepared, teacher=teacher.outputs["teacher"],
                data_json=data_json, measure_speed=measure_speed, model_subdir="", **common,
            ).set_display_name("evaluate")
        with dsl.ParallelFor(train.outputs["Output"], name="baselines") as baseline_dir:
            evaluate_baseline = evaluate_model(
                model=trained, prepared=prepared, teacher=teacher.outputs["teacher"], data_json=data_json,
                measure_speed=measure_speed, model_subdir=baseline_dir, **common,
            ).set_display_name("evaluate-baseline")

        report = write_report(
            width_evaluations=dsl.Collected(evaluate.outputs["evaluation"]),
            baseline_evaluations=dsl.Collected(evaluate_baseline.outputs["evaluation"]),
            teacher=teacher.outputs["teacher"],
            **common,
        ).set_display_name("report")
        # Beside the report, not after it: both read only the evaluations (the local runner runs two steps at once).
        release = release_models(
            width_evaluations=dsl.Collected(evaluate.outputs["evaluation"]),
            baseline_evaluations=dsl.Collected(evaluate_baseline.outputs["evaluation"]),
            # The models themselves, not the paths inside the evaluation records: on a cluster each task sees
            # its inputs at its own local paths.
            width_models=dsl.Collected(extract.outputs["model"]),
            trained=trained, teacher=teacher.outputs["teacher"], prepared=prepared, data_json=data_json,
            release_json=release_json, **common,
        ).set_display_name("release")
        return PipelineOutputs(report=report.outputs["report"], report_html=report.outputs["report_html"],
                               release=release.outputs["release"])

    return matta_pipeline


#: The pipeline for the source tree as it is now (the code version is computed on import: "compile time").
matta_pipeline = build_pipeline(current_code_version())


def pipeline_arguments(config: PipelineConfig, *, tracking_uri: str = "", parent_run_id: str = "") -> dict[str, Any]:
    """The pipeline's parameters for a validated config (and an MLflow parent run, if tracking)."""
    return {
        "task": config.task,
        "data_json": config.data.model_dump_json(),
        "teacher_json": config.teacher.model_dump_json(),
        "model_json": config.model.model_dump_json(),
        "train_json": config.train.model_dump_json(),
        "release_json": config.release.model_dump_json(),
        "widths": [list(w) for w in config.widths],
        "cache_dir": config.cache_dir,
        "measure_speed": config.measure_speed,
        "tracking_uri": tracking_uri,
        "parent_run_id": parent_run_id,
    }
