"""The pipeline steps with their MLflow record: what each step logs in its child run of the pipeline run.

The KFP components (``components/``) and ``matta component <name>`` call these functions and nothing else, so a
step logs the same thing however it is started. Each component starts with `start_task`, which refuses to run in
an image built from other code than the pipeline's (``matta_core.image_identity``) before any work is done. Each
function runs one step function from this package, opens a child run under the pipeline's parent run when
tracking is on, logs params, metrics, lineage tags and models there, and returns the step's scalar metrics (which
the component also publishes as its ``Output[Metrics]``).

Tracking is off when `Tracking.parent_run_id` is empty: then MLflow is not even imported (a ~1 s import per
step process), which is how the benchmark measures orchestration alone.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matta_core.config import (
    MODEL_SECTIONS,
    ConfigError,
    DataSection,
    DecoderSection,
    ModelSection,
    ReleaseSection,
    TeacherSection,
    TrainSection,
    check_task,
)
from matta_core.config_base import load_section
from matta_core.steps.layout import (
    EVALUATION,
    GATE_REPORT,
    PARETO_PNG,
    RELEASE_SUMMARY,
    REPORT_HTML,
    REPORT_JSON,
    REPORT_MD,
    TEACHER_INFO,
    TRAIN_RESULT,
)

log = logging.getLogger(__name__)
#: Texts logged as each model's MLflow input example (MLflow also predicts on them before logging).
INPUT_EXAMPLE_ROWS = 3


@dataclass(frozen=True)
class Tracking:
    """Where a step records itself: a child of run `parent_run_id` in the store at `tracking_uri`.

    `code_version` (package version + source hash, see ``pipelines/code_version.py``) becomes the
    ``matta.code.version`` tag of every step run. An empty `parent_run_id` turns tracking off.
    """

    tracking_uri: str = ""
    parent_run_id: str = ""
    code_version: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.parent_run_id)

    @contextmanager
    def step(self, name: str) -> Iterator[str | None]:
        """A child run named `name` under the parent; yields its run id, or None when tracking is off."""
        if not self.enabled:
            yield None
            return
        from matta_core.tracking import step_run

        with step_run(self.parent_run_id, name, tracking_uri=self.tracking_uri or None) as run:
            yield run.run_id


def start_task(tracking_uri: str, parent_run_id: str, code_version: str, *, experiment: str = "") -> Tracking:
    """What every component calls first: refuse a stale image, then return the step's `Tracking`.

    `check_task_code_version` compares the task's `code_version` input (fixed when the pipeline was compiled)
    with the code version the container image was built from, and raises
    `matta_core.image_identity.ImageIdentityError` naming both when they differ; outside an image it does nothing.
    Then torch's thread count is lowered to the CPUs the task may use (its pod's CPU limit, not the node's cores:
    64 threads throttled to 2 CPUs run far slower than 2), unless ``OMP_NUM_THREADS`` says otherwise.

    The parent run: `parent_run_id` when given (``matta run`` opened it). Otherwise, for a step that names its
    `experiment` while a tracking store is set (on a cluster: ``MLFLOW_TRACKING_URI`` from the MLflow Secret),
    the parent the pipeline's first task opened for this run, found by the run's identity in the environment
    (`matta_core.cluster.run_identity`): the step then takes no per-run input and stays cacheable across runs.
    """
    from matta_core.cpu_limit import apply_cpu_limit
    from matta_core.task_process import prepare_task_process

    prepare_task_process(code_version)
    apply_cpu_limit()  # without importing torch: the prepare, report and release tasks never use it
    if not parent_run_id and experiment:
        parent_run_id = _parent_of_this_run(tracking_uri, experiment)
    return Tracking(tracking_uri, parent_run_id, code_version)


def _parent_of_this_run(tracking_uri: str, experiment: str) -> str:
    """The parent run of the pipeline run this task belongs to, or "" when no tracking store is set."""
    from matta_core.tracking.uri import configured_tracking_uri

    uri = configured_tracking_uri(tracking_uri)
    if not uri:
        return ""
    from matta_core.cluster.run_identity import KFP_RUN_ID_ENV, VERTEX_RUN_LABELS_ENV, current_run_key
    from matta_core.tracking.errors import TrackingError
    from matta_core.tracking.kfp_parent import find_parent_by_run_key

    run_key = current_run_key()
    if run_key is None:
        raise TrackingError(
            "a tracking store is set but no parent run was passed, and this task cannot tell which pipeline run it "
            f"belongs to: neither {KFP_RUN_ID_ENV} (KFP: the compiled cluster pipeline sets it from the pod's "
            f"pipeline/runid label) nor {VERTEX_RUN_LABELS_ENV} (set by Vertex AI) is in its environment; run the "
            "pipeline with `matta run`, or compile it with `matta compile --config` for a cluster")
    found = find_parent_by_run_key(uri, experiment, run_key)
    if found is None:
        raise TrackingError(f"no parent run tagged matta.run_key={run_key!r} in experiment {experiment!r}: the "
                            "pipeline's first task (start-run) opens it; did it run against the same tracking store?")
    return found


def load_model_section(task: str, text: str) -> ModelSection | DecoderSection:
    """The model section of `task` (a `ModelSection` or a `DecoderSection`) from its JSON pipeline parameter."""
    return load_section(MODEL_SECTIONS[check_task(task)], text, "model")


def parse_widths(widths: Sequence[Any]) -> list[int]:
    """Per-layer widths from a pipeline parameter: KFP hands list items over as floats (``[96.0]``)."""
    parsed = []
    for width in widths:
        if isinstance(width, bool) or float(width) != int(float(width)):
            raise ConfigError(f"widths {list(widths)}: every entry must be a whole number, got {width!r}")
        parsed.append(int(float(width)))
    return parsed


def widths_label(widths: Sequence[int]) -> str:
    """``[256, 64]`` -> ``256x64``: the width part of folder and run names (as in `run_local`)."""
    return "x".join(str(w) for w in widths)


# --- the steps ------------------------------------------------------------------------------------------


def prepare(data: DataSection, out_dir: str, tracking: Tracking, task: str = "classification") -> dict[str, float]:
    """Step 1: validate, dedupe and split the data; log row counts and the data's content hash."""
    if check_task(task) == "causal_lm":
        from matta_core.steps import tracked_lm

        return tracked_lm.prepare(data, out_dir, tracking)
    from matta_core import storage
    from matta_core.data.summary import quarantine_line
    from matta_core.steps.prepare_step import prepare_step

    with tracking.step("prepare") as run_id:
        manifest = prepare_step(data, out_dir)
        metrics = {f"rows_{split}": float(rows) for split, rows in manifest.row_counts.items()}
        # Every reason, zeros included, so runs line up column by column in MLflow's run table.
        metrics["rows_quarantined"] = float(manifest.quarantine["rows"])
        metrics.update({f"quarantined_{r}": float(n) for r, n in manifest.quarantine["counts"].items()})
        metrics["num_labels"] = float(len(manifest.label_map))
        metrics["data_warnings"] = float(len(manifest.warnings))
        if run_id is not None:
            params = {
                "data": data.model_dump(),
                "quarantine": {"file": storage.join(out_dir, manifest.quarantine["path"]),
                               "summary": quarantine_line(manifest, out_dir)},
            }
            if manifest.warnings:
                params["warning"] = {w["code"]: w["message"] for w in manifest.warnings}
            _log_step(run_id, params, metrics)
            _lineage(run_id, tracking, data_content_hash=manifest.content_hash)
    return metrics


def teacher(
    prepared_dir: str, out_dir: str, teacher_section: TeacherSection, data: DataSection, cache_dir: str,
    tracking: Tracking, task: str = "classification",
) -> dict[str, float]:
    """Step 2: the Teacher's outputs on every split, through the content-addressed cache."""
    if check_task(task) == "causal_lm":
        from matta_core.steps import tracked_lm

        return tracked_lm.teacher(prepared_dir, out_dir, teacher_section, data, cache_dir, tracking)
    from matta_core.steps.teacher_step import teacher_step

    with tracking.step("teacher") as run_id:
        info = teacher_step(prepared_dir, out_dir, teacher_section, data, cache_dir, progress=False)
        metrics: dict[str, float] = {}
        for split, record in info["splits"].items():
            if record["accuracy"] is not None:
                metrics[f"teacher_accuracy_{split}"] = float(record["accuracy"])
            cache = record.get("cache", {})
            for key in ("hits", "misses"):
                if isinstance(cache.get(key), int | float):
                    metrics[f"cache_{key}_{split}"] = float(cache[key])
        if run_id is not None:
            _log_step(run_id, {"teacher": teacher_section.model_dump(), "cache_dir": cache_dir}, metrics)
            _lineage(run_id, tracking, data_content_hash=info["data_content_hash"],
                     teacher_cache_key=info["cache_key"], teacher_fingerprint=info["fingerprint"])
    return metrics


def train(
    prepared_dir: str, teacher_dir: str, out_dir: str, model: ModelSection | DecoderSection,
    train_section: TrainSection, data: DataSection, tracking: Tracking, task: str = "classification",
) -> tuple[dict[str, float], list[str]]:
    """Step 3: train the TA+Student (MatTA) and the baselines; returns metrics and the baselines' sub-folders.

    Each arm gets its own MLflow run nested under the train run (``train-matta``, ``train-kd``, ...), fed by
    `MLflowMetricsCallback`, so the arms' loss curves sit side by side instead of overwriting each other.
    The baseline models are logged by this step, which is the one that writes them.
    """
    if not isinstance(model, MODEL_SECTIONS[check_task(task)]):
        raise ConfigError(f"task {task!r} takes a {MODEL_SECTIONS[task].__name__} model section, got "
                          f"{type(model).__name__}")
    if isinstance(model, DecoderSection):
        from matta_core.steps import tracked_lm

        return tracked_lm.train(prepared_dir, teacher_dir, out_dir, model, train_section, data, tracking)
    from matta_core.steps.train_step import train_step

    with tracking.step("train") as run_id:
        with arm_runs(tracking, run_id, teacher_dir) as arm_callbacks:
            summary = train_step(prepared_dir, teacher_dir, out_dir, model, train_section, data, progress=False,
                                 arm_callbacks=arm_callbacks, code_version=tracking.code_version or None)
        metrics = {"train_rows": float(summary["train_rows"]), **arm_metrics(summary)}
        baseline_dirs = list(summary["baseline_dirs"].values())
        if run_id is not None:
            params: dict[str, Any] = {"model": model.model_dump(), "train": train_section.model_dump()}
            if summary["warnings"]:  # e.g. a batch larger than the data (train_step prints them too)
                params["warning"] = {w["code"]: w["message"] for w in summary["warnings"]}
            _log_step(run_id, params, metrics)
            _lineage(run_id, tracking, data_content_hash=summary["data_content_hash"],
                     teacher_cache_key=summary["teacher_cache_key"])
            examples = _example_texts(prepared_dir, data)
            for sub in baseline_dirs:
                _log_model(str(Path(out_dir) / sub), _model_name(str(Path(out_dir) / sub)), examples)
    return metrics, baseline_dirs


@contextmanager
def arm_runs(tracking: Tracking, run_id: str | None, teacher_dir: str) -> Iterator[Callable[[str], list[Any]] | None]:
    """The `arm_callbacks` of a train step: each arm (``matta``, ``kd``, ...) gets its own MLflow run under the
    train run `run_id` (``train-matta``, ...), fed by `MLflowMetricsCallback`, so the arms' loss curves sit side by
    side instead of overwriting each other. None when tracking is off. The last arm's run ends on exit."""
    if run_id is None:
        yield None
        return
    from matta_core.tracking import MLflowMetricsCallback

    teacher_info = json.loads((Path(teacher_dir) / TEACHER_INFO).read_text())
    arm_tracking = Tracking(tracking.tracking_uri, run_id, tracking.code_version)
    with ExitStack() as open_arm:

        def callbacks_for(arm: str) -> list[Any]:
            open_arm.close()  # the previous arm is done: end its run FINISHED before the next one starts
            arm_run_id = open_arm.enter_context(arm_tracking.step(f"train-{arm}"))
            assert arm_run_id is not None  # tracking is on: arm_tracking has a parent
            _log_step(arm_run_id, {"arm": arm}, {})
            _lineage(arm_run_id, tracking, data_content_hash=teacher_info["data_content_hash"],
                     teacher_cache_key=teacher_info["cache_key"])
            return [MLflowMetricsCallback(arm_run_id, every=1, tracking_uri=tracking.tracking_uri or None)]

        yield callbacks_for


def arm_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """Each trained arm's step count, wall time and final loss terms, from a train step's summary."""
    metrics: dict[str, float] = {}
    for arm, result in summary["arms"].items():
        metrics[f"{arm}_steps"] = float(result["steps"])
        metrics[f"{arm}_wall_seconds"] = float(result["wall_seconds"])
        metrics.update({f"{arm}_final_{k}": float(v) for k, v in result["final_loss"].items()})
    return metrics


def extract(
    trained_dir: str, widths: Sequence[Any], out_dir: str, prepared_dir: str, data: DataSection, tracking: Tracking,
    task: str = "classification",
) -> dict[str, float]:
    """Step 4: cut one standalone model out of the nested one (parity-checked); log it as an MLflow model."""
    if check_task(task) == "causal_lm":
        from matta_core.steps import tracked_lm

        return tracked_lm.extract(trained_dir, widths, out_dir, tracking)
    from matta_core.steps.extract_step import extract_step

    parsed = parse_widths(widths)
    with tracking.step(f"extract-{widths_label(parsed)}") as run_id:
        result = extract_step(trained_dir, parsed, out_dir, prepared_dir, data)
        metrics = {"parity_max_abs_diff": float(result["parity_max_abs_diff"])}
        if run_id is not None:
            summary = json.loads((Path(trained_dir) / TRAIN_RESULT).read_text())
            _log_step(run_id, {"widths": parsed, "name": result["name"]}, metrics)
            _lineage(run_id, tracking, data_content_hash=summary["data_content_hash"],
                     teacher_cache_key=summary.get("teacher_cache_key"), widths=parsed)
            _log_model(out_dir, result["name"], _example_texts(prepared_dir, data))
    return metrics


def evaluate(
    model_dir: str, prepared_dir: str, out_dir: str, data: DataSection, measure_speed: bool, tracking: Tracking,
    task: str = "classification", teacher_dir: str | None = None,
) -> dict[str, float]:
    """Step 5: quality and serving cost of one standalone model on the test split.

    A causal-LM model is scored on the ids the Teacher read, so `teacher_dir` (the Teacher step's folder) is
    required for ``task: causal_lm``; the classifier reads its test rows from `prepared_dir`.
    """
    if check_task(task) == "causal_lm":
        from matta_core.steps import tracked_lm

        if not teacher_dir:
            raise ConfigError("evaluating a causal_lm model needs the Teacher step's folder (its test token ids and "
                              "cloze examples): pass the teacher input (matta component evaluate --teacher DIR)")
        return tracked_lm.evaluate(model_dir, teacher_dir, out_dir, measure_speed, tracking)
    from matta_core.extraction import load_extracted
    from matta_core.steps.evaluate_step import evaluate_step

    _, config = load_extracted(model_dir)
    name = str(config.metadata.get("name", widths_label(config.hidden_widths)))
    with tracking.step(f"evaluate-{name}") as run_id:
        record = evaluate_step(model_dir, prepared_dir, out_dir, data, measure_speed=measure_speed)
        metrics = _numbers(record)
        if run_id is not None:
            _log_step(run_id, {"name": name, "arm": record["arm"], "measure_speed": measure_speed}, metrics)
            _lineage(run_id, tracking, data_content_hash=config.metadata.get("data_content_hash"),
                     teacher_cache_key=config.metadata.get("teacher_cache_key"), widths=list(config.hidden_widths))
    return metrics


def report(
    evaluation_dirs: Sequence[str], teacher_dir: str | None, out_dir: str, tracking: Tracking,
    task: str = "classification", *, prepared_dir: str | None = None, trained_dir: str | None = None,
) -> dict[str, Any]:
    """Step 6: the report (table, Pareto front, chart); logged to the report run and to the parent run.

    With the prepare and train steps' folders, the classifier's report header also shows the quarantined rows per
    reason and every data and training warning.

    The parent run gets the chart, the HTML report and one ``accuracy/<model>`` metric per model (for a causal
    LM: ``perplexity/<model>`` and ``cloze_accuracy/<model>``), so runs can be compared in MLflow's run table
    without opening their children.
    """
    # One record for both tasks: only the report itself (columns, chart, which way is better) differs.
    if check_task(task) == "causal_lm":
        from matta_core.steps.lm.report import lm_report_step as report_step
        notes: dict[str, Any] = {}
    else:
        from matta_core.steps.report_step import report_step
        notes = {"prepared_dir": prepared_dir, "trained_dir": trained_dir}

    evaluations = [json.loads((Path(d) / EVALUATION).read_text()) for d in evaluation_dirs]
    with tracking.step("report") as run_id:
        result = report_step(evaluations, teacher_dir, out_dir, **notes)
        metrics = report_metrics(result)
        if run_id is not None:
            from matta_core.tracking import log_figure, log_json, log_metrics, log_report

            out = Path(out_dir)
            teacher = result.get("teacher", {})
            _log_step(run_id, {"models": len(result["models"])}, metrics)
            _lineage(run_id, tracking, data_content_hash=_first(evaluations, "data_content_hash"),
                     teacher_cache_key=teacher.get("cache_key"), teacher_fingerprint=teacher.get("fingerprint"))
            for target in (run_id, tracking.parent_run_id):
                log_report(out / REPORT_HTML, run_id=target)
                log_figure(out / PARETO_PNG, run_id=target)
            log_report(out / REPORT_MD, run_id=run_id)
            log_json(json.loads((out / REPORT_JSON).read_text()), "report", run_id=run_id)
            log_metrics(metrics, run_id=tracking.parent_run_id)
    return result


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """``accuracy/<model>`` for every model in a report, plus the Teacher's when known (for a causal-LM report,
    `tracked_lm.report_metrics`)."""
    if report.get("task") == "causal_lm":
        from matta_core.steps import tracked_lm

        return tracked_lm.report_metrics(report)
    metrics = {f"accuracy/{r['name']}": float(r["accuracy"]) for r in report["models"]}
    teacher_accuracy = report.get("teacher", {}).get("test_accuracy")
    if teacher_accuracy is not None:
        metrics["accuracy/teacher"] = float(teacher_accuracy)
    return metrics


def write_report_views(report_dir: str, html_path: str, markdown_path: str) -> None:
    """Copy the report as single files a viewer renders alone (the KFP UI): HTML and Markdown, chart inlined."""
    from matta_core.steps.report_step import markdown_with_inline_chart

    for path, text in ((html_path, (Path(report_dir) / REPORT_HTML).read_text()),
                       (markdown_path, markdown_with_inline_chart(report_dir))):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)


def release(
    evaluation_dirs: Sequence[str], model_dirs: Sequence[str], trained_dir: str, teacher_dir: str | None,
    prepared_dir: str, data: DataSection, section: ReleaseSection, out_dir: str, tracking: Tracking,
    task: str = "classification",
) -> dict[str, float]:
    """Step 7: per size class, gate the best width, register it as ``@challenger`` if it passes, write the handoff.

    `matta_core.release.step.release_step` does the work; this resolves its inputs from the pipeline's folders:
    the width models by name (`model_dirs`, the extract outputs), the ``baseline_arm`` model inside `trained_dir`,
    the test rows of `prepared_dir` (row-limited as the evaluations were), lineage from the evaluations and the
    Teacher. The pipeline's MLflow run id is both the release run's parent and the registration's idempotency key
    (``pipeline_run_id``): a retried task registers nothing new. `out_dir` gets ``gate_report.md``,
    ``release.json`` (status ``gated`` or ``skipped``, the decision per class) and, when gated,
    ``gate_decisions.json`` and ``<class>/ab_handoff.json`` + ``.md`` for every class that passed.

    The registry lives in MLflow: with tracking off, or ``release.enabled`` false, the step registers nothing,
    logs a warning and writes a gate report saying why (a run without tracking still succeeds). So does a
    ``task: causal_lm`` run: the gate is the classifier's.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skipped = _release_skip_reason(section, tracking, check_task(task))
    if skipped is not None:
        log.warning("release skipped: %s", skipped)
        (out / GATE_REPORT).write_text(f"# Release gate: skipped\n\n{skipped}\n")
        _write_json(out / RELEASE_SUMMARY, {"status": "skipped", "reason": skipped, "classes": {}})
        return {"skipped": 1.0, "size_classes": float(len(section.size_classes)), "passed": 0.0}

    from matta_core.release.rows import EvalRows
    from matta_core.release.step import release_step

    evaluations = [json.loads((Path(d) / EVALUATION).read_text()) for d in evaluation_dirs]
    decisions = release_step(
        evaluations,
        run_models={_model_name(d): d for d in model_dirs},
        baseline_model_dir=_baseline_dir(trained_dir, section.baseline_arm),
        config=section,
        tracking_uri=tracking.tracking_uri or None,
        pipeline_run_id=tracking.parent_run_id,
        lineage={"data_content_hash": _first(evaluations, "data_content_hash"),
                 "teacher_cache_key": _first(evaluations, "teacher_cache_key"),
                 "teacher_fingerprint": _teacher_info(teacher_dir).get("fingerprint"),
                 "code_version": tracking.code_version or None},
        test_rows=EvalRows.from_prepared(prepared_dir, data),
        out_dir=out,
        parent_run_id=tracking.parent_run_id,
    )
    classes = {
        d.size_class: {
            "passed": d.passed, "registered_model": d.registered_model,
            "candidate": None if d.candidate is None else d.candidate.get("name"),
            "version": d.registered_version, "version_created": d.version_created,
            "challenger_set": d.challenger_set, "failed_checks": [c.name for c in d.failed_checks],
            "handoff": None if d.handoff_path is None else str(Path(d.handoff_path).relative_to(out)),
        }
        for d in decisions
    }
    _write_json(out / RELEASE_SUMMARY, {"status": "gated", "pipeline_run_id": tracking.parent_run_id,
                                        "classes": classes})
    metrics = {"skipped": 0.0, "size_classes": float(len(decisions)), "passed": float(sum(d.passed for d in decisions))}
    metrics.update({f"passed/{d.size_class}": float(d.passed) for d in decisions})
    return metrics


def write_release_view(release_dir: str, markdown_path: str) -> None:
    """Copy the gate report as a single Markdown file (the KFP UI renders a Markdown artifact on its own)."""
    Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
    Path(markdown_path).write_text((Path(release_dir) / GATE_REPORT).read_text())


def publish_metrics(artifact: Any, metrics: Mapping[str, float]) -> None:
    """Fill a KFP ``Output[Metrics]`` (duck-typed: ``log_metric`` + ``path``) and write the same values to its file.

    The file matters: kfp.local's cache treats a Metrics output whose file is missing as a miss, so without it
    a step with metrics would never be served from the cache.
    """
    for key, value in metrics.items():
        artifact.log_metric(key, float(value))
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n")


# --- helpers --------------------------------------------------------------------------------------------


def _log_step(run_id: str, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    from matta_core.tracking import log_metrics, log_params_flat

    log_params_flat(params, run_id=run_id)
    log_metrics(metrics, run_id=run_id)


def _lineage(
    run_id: str,
    tracking: Tracking,
    *,
    data_content_hash: str | None = None,
    teacher_cache_key: str | None = None,
    teacher_fingerprint: str | None = None,
    widths: Sequence[int] | None = None,
) -> None:
    from matta_core.tracking import set_lineage_tags

    set_lineage_tags(data_content_hash, teacher_cache_key, tracking.code_version or None,
                     teacher_fingerprint=teacher_fingerprint, widths=None if widths is None else list(widths),
                     run_id=run_id)


def _log_model(model_dir: str, name: str, examples: Sequence[str]) -> str:
    """Log the saved model as a pickle-free pyfunc into the active (step) run."""
    from matta_core.tracking import log_standalone_model

    return log_standalone_model(model_dir, name, input_example_texts=examples)


def _model_name(model_dir: str) -> str:
    """The width name a saved model's config records (what its evaluation record is called), without its weights."""
    from matta_core.extraction import CONFIG_FILE, ExtractedConfig

    path = Path(model_dir) / CONFIG_FILE
    config = ExtractedConfig.from_dict(json.loads(path.read_text()), source=str(path))
    return str(config.metadata.get("name", widths_label(config.hidden_widths)))


def _example_texts(prepared_dir: str, data: DataSection) -> list[str]:
    from matta_core.steps.inputs import load_inputs

    return load_inputs(prepared_dir, data).splits["validation"].texts[:INPUT_EXAMPLE_ROWS]


def _numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric fields of a record (booleans and unmeasured speed fields left out)."""
    return {
        key: float(value)
        for key, value in record.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
    }


def _release_skip_reason(section: ReleaseSection, tracking: Tracking, task: str) -> str | None:
    if not section.enabled:
        return "release.enabled is false: no model was gated or registered."
    if task == "causal_lm":
        from matta_core.steps.tracked_lm import RELEASE_SKIP_REASON

        return RELEASE_SKIP_REASON
    if not tracking.enabled:
        return ("tracking is off (no MLflow parent run), and the release registers models in the MLflow Model "
                "Registry: no model was gated or registered. Run with tracking (`matta run` without --no-tracking; "
                "`matta submit` with an MLflow server as tracking_uri) to release, or set release.enabled: false "
                "to silence this.")
    return None


def _baseline_dir(trained_dir: str, arm: str) -> str | None:
    """The `arm` baseline model inside the train step's folder (as train_result.json lists it), if it was trained."""
    sub = json.loads((Path(trained_dir) / TRAIN_RESULT).read_text()).get("baseline_dirs", {}).get(arm)
    return None if sub is None else str(Path(trained_dir) / sub)


def _teacher_info(teacher_dir: str | None) -> dict[str, Any]:
    if teacher_dir is None or not (Path(teacher_dir) / TEACHER_INFO).is_file():
        return {}
    return dict(json.loads((Path(teacher_dir) / TEACHER_INFO).read_text()))


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _first(records: Sequence[Mapping[str, Any]], key: str) -> str | None:
    return next((str(r[key]) for r in records if r.get(key)), None)
