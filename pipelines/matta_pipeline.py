"""The MatTA pipeline: open the run -> prepare -> Teacher cache -> train (TA+Student, baselines) -> per width:
extract and evaluate -> evaluate the baselines -> report, and release (gate, register @challenger, A/B handoff)
-> end the run.

::

    start_run ─► prepare_data ─► cache_teacher_outputs ─► train_models ─┬─► ParallelFor(widths): extract_and_evaluate ─┐
      (parent_run_id, data_version)                                    └─► ParallelFor(baselines): evaluate_model ─────┤
                                       (teacher) ────────────────────────────────────────────► write_report ◄─ Collected
                   (prepared, teacher, trained, width models) ──────────────────────────► release_models ◄─ Collected
                                                                         (report, release) ─► end_run

Parameters (each settable on a cluster run; `build_pipeline(..., defaults=config)` compiles a config's values in
as their defaults): ``task`` (``classification`` or ``causal_lm``: the model family; every step receives it and
dispatches on it, so one DAG and one set of components serve both), ``name`` (the MLflow experiment), the config
sections as JSON (``data_json``, ``teacher_json``, ``model_json``, ``train_json``, ``release_json``: the
`PipelineConfig` sections, validated again by each step), ``widths`` (the widths to extract: per-layer ints, or one
[ffn_width, n_heads] pair per block for ``causal_lm``), ``cache_dir``, ``measure_speed``, and the MLflow
``tracking_uri`` + ``parent_run_id``. Both empty on a cluster: ``start_run`` then opens (or, retried, finds) the
parent run of this KFP run in the store the MLflow Secret names, and every other task takes its id as a task
output; no store at all = no tracking (the release step then registers nothing and says so). The parent run id is
also the release's ``pipeline_run_id``, the idempotency key of registration: a retried release task registers
nothing new. ``start_run`` also reads the data's version, which ``prepare_data`` takes as its cache key. Sections
rather than one config document: a step receives only the sections it reads, so changing, say, ``train.lr`` leaves
the prepare and Teacher steps' cache keys unchanged. The evaluations also read the Teacher's folder: a causal LM is
scored on the token ids the Teacher read. `pipeline_arguments` turns a validated `PipelineConfig` into these
parameters; `pipelines.task_settings` applies a cluster's per-task settings as the tasks are built.
"""

# No `from __future__ import annotations` here: KFP reads the pipeline function's annotation objects.
from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset
from kfp.dsl.graph_component import GraphComponent

from components import (
    cache_teacher_outputs,
    end_run,
    evaluate_model,
    extract_and_evaluate,
    prepare_data,
    release_models,
    start_run,
    train_models,
    write_report,
)
from matta_core.config import PipelineConfig
from pipelines.code_version import code_version as current_code_version
from pipelines.task_settings import PipelineSettings, apply_settings

PIPELINE_NAME = "matta"
_DEFAULTS = PipelineConfig()


class PipelineOutputs(NamedTuple):
    """What a run of the pipeline returns: the report folder, its HTML view, and the release folder (gate report,
    decisions, A/B handoffs)."""

    report: Dataset
    report_html: HTML
    release: Dataset


def build_pipeline(
    code_version: str, settings: PipelineSettings | None = None, defaults: PipelineConfig | None = None
) -> GraphComponent:
    """The pipeline with `code_version` baked into every task's inputs (and so into every cache key), each task's
    cluster settings (`pipelines.task_settings`; default: none, as a local run wants), and `defaults` (a config;
    default `PipelineConfig()`) as its parameters' defaults: a recurring run that passes no parameters runs it."""
    settings = settings or PipelineSettings.local()
    d = defaults or _DEFAULTS

    def configured(task: Any, step: str, display_name: str, cache_name: str | None = None) -> Any:
        return apply_settings(task.set_display_name(display_name), step, settings, cache_name=cache_name)

    @dsl.pipeline(name=PIPELINE_NAME, description="MatTA: elastic Student models by Teacher-TA-Student distillation")
    def matta_pipeline(
        task: str = d.task,
        name: str = d.name,
        data_json: str = d.data.model_dump_json(),
        teacher_json: str = d.teacher.model_dump_json(),
        model_json: str = d.model.model_dump_json(),
        train_json: str = d.train.model_dump_json(),
        release_json: str = d.release.model_dump_json(),
        widths: list = [list(w) for w in d.widths],  # noqa: B006  (a KFP parameter default, compiled into the YAML)
        cache_dir: str = d.cache_dir,
        measure_speed: bool = d.measure_speed,
        tracking_uri: str = "",
        parent_run_id: str = "",
    ) -> PipelineOutputs:
        start = configured(start_run(
            task=task, name=name, data_json=data_json, teacher_json=teacher_json, model_json=model_json,
            train_json=train_json, release_json=release_json, code_version=code_version, tracking_uri=tracking_uri,
            parent_run_id=parent_run_id, kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            kfp_run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        ), "tracking", "start-run", "start_run")
        outputs, last_tasks = _steps(
            configured, task=task, code_version=code_version, tracking_uri=tracking_uri,
            parent_run_id=start.outputs["parent_run_id"], data_version=start.outputs["data_version"],
            data_json=data_json, teacher_json=teacher_json, model_json=model_json, train_json=train_json,
            release_json=release_json, widths=widths, cache_dir=cache_dir, measure_speed=measure_speed,
        )
        # Not a dsl.ExitHandler: KFP refuses pipeline outputs from inside one. A failed run's parent stays RUNNING.
        configured(end_run(
            code_version=code_version, tracking_uri=tracking_uri, given_parent_run_id=parent_run_id,
            opened_run_id=start.outputs["parent_run_id"],
        ).after(*last_tasks), "tracking", "end-run", "end_run")
        return outputs

    return matta_pipeline


def _steps(configured: Any, *, task: Any, code_version: str, tracking_uri: Any, parent_run_id: Any,
           data_version: Any, data_json: Any, teacher_json: Any, model_json: Any, train_json: Any,
           release_json: Any, widths: Any, cache_dir: Any, measure_speed: Any) -> tuple[PipelineOutputs, list[Any]]:
    """The steps between the first and the last task, and the tasks that end them; `configured(task, step,
    display_name)` applies settings."""
    common: dict[str, Any] = {
        "task": task, "code_version": code_version, "tracking_uri": tracking_uri, "parent_run_id": parent_run_id,
    }
    prepare = configured(prepare_data(data_json=data_json, data_version=data_version, **common), "prepare",
                         "prepare")
    prepared = prepare.outputs["prepared"]
    teacher = configured(cache_teacher_outputs(
        prepared=prepared, data_json=data_json, teacher_json=teacher_json, cache_dir=cache_dir, **common
    ), "teacher", "teacher")
    train = configured(train_models(
        prepared=prepared, teacher=teacher.outputs["teacher"], data_json=data_json, model_json=model_json,
        train_json=train_json, **common,
    ), "train", "train")
    trained = train.outputs["trained"]

    with dsl.ParallelFor(widths, name="widths") as width:
        width_task = configured(extract_and_evaluate(
            trained=trained, prepared=prepared, teacher=teacher.outputs["teacher"], widths=width,
            data_json=data_json, measure_speed=measure_speed, **common,
        ), "evaluate", "extract-evaluate")
    with dsl.ParallelFor(train.outputs["Output"], name="baselines") as baseline_dir:
        evaluate_baseline = configured(evaluate_model(
            model=trained, prepared=prepared, teacher=teacher.outputs["teacher"], data_json=data_json,
            measure_speed=measure_speed, model_subdir=baseline_dir, **common,
        ), "evaluate", "evaluate-baseline")

    report = configured(write_report(
        width_evaluations=dsl.Collected(width_task.outputs["evaluation"]),
        baseline_evaluations=dsl.Collected(evaluate_baseline.outputs["evaluation"]),
        teacher=teacher.outputs["teacher"],
        **common,
    ), "report", "report")
    # Beside the report, not after it: both read only the evaluations (the local runner runs two steps at once).
    release = configured(release_models(
        width_evaluations=dsl.Collected(width_task.outputs["evaluation"]),
        baseline_evaluations=dsl.Collected(evaluate_baseline.outputs["evaluation"]),
        # The models themselves, not the paths inside the evaluation records: on a cluster each task sees
        # its inputs at its own local paths.
        width_models=dsl.Collected(width_task.outputs["model"]),
        trained=trained, teacher=teacher.outputs["teacher"], prepared=prepared, data_json=data_json,
        release_json=release_json, **common,
    ), "release", "release")
    return PipelineOutputs(report=report.outputs["report"], report_html=report.outputs["report_html"],
                           release=release.outputs["release"]), [report, release]


#: The pipeline for the source tree as it is now (the code version is computed on import: "compile time").
matta_pipeline = build_pipeline(current_code_version())


def pipeline_arguments(config: PipelineConfig, *, tracking_uri: str = "", parent_run_id: str = "") -> dict[str, Any]:
    """The pipeline's parameters for a validated config (and an MLflow parent run, if tracking)."""
    return {
        "task": config.task,
        "name": config.name,
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
