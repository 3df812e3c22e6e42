"""The MatTA pipeline: open the run -> prepare -> Teacher cache -> train (TA+Student, baselines) -> extract and
evaluate every width and the baselines -> report, and release (gate, register @challenger, A/B handoff); an exit
task ends the run however the steps ended.

::

    ExitHandler(end_run: ends the MLflow parent run FINISHED or FAILED, by the KFP run id)
    └─ start_run ─► prepare_data ─► cache_teacher_outputs ─► train_models ─► extract_and_evaluate ─┬─► write_report
       (parent_run_id, data_version)                                     (every width, baselines)  └─► release_models
                                                                                                      (parent_run_id)

Parameters (each settable on a cluster run; `build_pipeline(..., defaults=config)` compiles a config's values in
as their defaults): ``task`` (``classification`` or ``causal_lm``: the model family; every step receives it and
dispatches on it, so one DAG and one set of components serve both), ``name`` (the MLflow experiment), the config
sections as JSON (``data_json``, ``teacher_json``, ``model_json``, ``train_json``, ``release_json``: the
`PipelineConfig` sections, validated again by each step), ``widths`` (the widths to extract: per-layer ints, or one
[ffn_width, n_heads] pair per block for ``causal_lm``), ``extraction_json`` (how extracted widths store their
embedding table), ``cache_dir``, ``measure_speed``, and the MLflow
``tracking_uri`` + ``parent_run_id``.

Tracking and caching. ``matta run`` opens the parent run, passes its id to ``start_run`` and puts its run's
identity in every task's environment, as a cluster does. A cluster run passes neither:
``start_run`` opens (or, retried, finds) the parent run of this KFP run in the store the MLflow Secret names. Only
the tasks that are never cached (``release_models``, whose idempotency key it is) take that id as an input; the
steps that may be cached take nothing that changes from run to run (a new parent id per run would make every
cache key new) and find the parent by the run's identity in their environment (`matta_core.cluster.run_identity`).
So on a cluster unchanged data is not prepared again and an unchanged model is not trained again, and every run
is still tracked. ``start_run`` also reads the data's version, which ``prepare_data`` takes as its cache key, and
what ``model.init_from`` names now (an alias's version, a folder's digest), which ``train_models`` takes as its:
a moved ``@champion`` trains again.
Sections rather than one config document: a step receives only the sections it reads, so changing, say,
``train.lr`` leaves the prepare and Teacher steps' cache keys unchanged. The evaluations also read the Teacher's
folder: a causal LM is scored on the token ids the Teacher read.

The pipeline returns nothing: KFP refuses pipeline outputs from inside an ``ExitHandler``. ``matta run`` finds the
report and the release folders by their tasks (`pipelines.local_runner`). `pipeline_arguments` turns a validated
`PipelineConfig` into the parameters; `pipelines.task_settings` applies a cluster's per-task settings.
"""

# No `from __future__ import annotations` here: KFP reads the pipeline function's annotation objects.
from typing import Any

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from components import (
    cache_teacher_outputs,
    end_run,
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
        extraction_json: str = d.extraction.model_dump_json(),
        cache_dir: str = d.cache_dir,
        measure_speed: bool = d.measure_speed,
        tracking_uri: str = "",
        parent_run_id: str = "",
    ) -> None:
        # Runs last, however the steps ended. It can take no output of theirs: it finds the parent by the KFP run.
        finish = configured(end_run(
            name=name, code_version=code_version, tracking_uri=tracking_uri, given_parent_run_id=parent_run_id,
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        ), "tracking", "end-run", "end_run")
        with dsl.ExitHandler(finish, name="run"):
            start = configured(start_run(
                task=task, name=name, data_json=data_json, teacher_json=teacher_json, model_json=model_json,
                train_json=train_json, release_json=release_json, code_version=code_version,
                tracking_uri=tracking_uri, parent_run_id=parent_run_id, kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                kfp_run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            ), "tracking", "start-run", "start_run")
            _steps(configured, task=task, name=name, code_version=code_version, tracking_uri=tracking_uri,
                   run_parent_id=start.outputs["parent_run_id"],
                   data_version=start.outputs["data_version"], init_from_version=start.outputs["init_from_version"],
                   data_json=data_json, teacher_json=teacher_json,
                   model_json=model_json, train_json=train_json, release_json=release_json, widths=widths,
                   extraction_json=extraction_json, cache_dir=cache_dir, measure_speed=measure_speed)

    return matta_pipeline


def _steps(configured: Any, *, task: Any, name: Any, code_version: str, tracking_uri: Any, run_parent_id: Any,
           data_version: Any, init_from_version: Any, data_json: Any, teacher_json: Any, model_json: Any,
           train_json: Any, release_json: Any, widths: Any, extraction_json: Any, cache_dir: Any,
           measure_speed: Any) -> None:
    """The steps between the first and the exit task; `configured(task, step, display_name)` applies settings.

    `run_parent_id` is the parent run `start_run` opened (or was given), which only the release takes. The steps
    that may be cached get no parent id at all, even when ``matta run`` passes one to `start_run`: they find the
    parent by the run's identity, so a rerun with unchanged inputs hits their cache (`pipelines.local_runner`
    resumes an unfinished run that way)."""
    common: dict[str, Any] = {
        "task": task, "code_version": code_version, "tracking_uri": tracking_uri, "parent_run_id": "",
        "experiment": name,
    }
    prepare = configured(prepare_data(data_json=data_json, data_version=data_version, **common), "prepare",
                         "prepare")
    prepared = prepare.outputs["prepared"]
    teacher = configured(cache_teacher_outputs(
        prepared=prepared, data_json=data_json, teacher_json=teacher_json, cache_dir=cache_dir, **common
    ), "teacher", "teacher")
    train = configured(train_models(
        prepared=prepared, teacher=teacher.outputs["teacher"], data_json=data_json, model_json=model_json,
        train_json=train_json, init_from_version=init_from_version, **common,
    ), "train", "train")
    trained = train.outputs["trained"]
    evaluate = configured(extract_and_evaluate(
        trained=trained, prepared=prepared, teacher=teacher.outputs["teacher"], widths=widths,
        baseline_dirs=train.outputs["Output"], data_json=data_json, extraction_json=extraction_json,
        measure_speed=measure_speed, **common,
    ), "evaluate", "extract-evaluate")
    evaluations = evaluate.outputs["evaluations"]

    # The prepared data and the trained folder too: the report's header shows their quarantine counts and warnings.
    configured(write_report(evaluations=evaluations, teacher=teacher.outputs["teacher"], prepared=prepared,
                            trained=trained, **common), "report", "report")
    # Beside the report, not after it: both read only the evaluations (the local runner runs two steps at once).
    release_common = {**{k: v for k, v in common.items() if k != "experiment"}, "parent_run_id": run_parent_id}
    configured(release_models(
        evaluations=evaluations,
        # The models themselves, not the paths inside the evaluation records: on a cluster each task sees
        # its inputs at its own local paths.
        width_models=evaluate.outputs["models"],
        trained=trained, teacher=teacher.outputs["teacher"], prepared=prepared, data_json=data_json,
        release_json=release_json, **release_common,
    ), "release", "release")


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
        "extraction_json": config.extraction.model_dump_json(),
        "cache_dir": config.cache_dir,
        "measure_speed": config.measure_speed,
        "tracking_uri": tracking_uri,
        "parent_run_id": parent_run_id,
    }
