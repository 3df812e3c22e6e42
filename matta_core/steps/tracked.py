"""The pipeline steps with their MLflow record, whichever model family runs: what each step logs in its child run.

The KFP components (``components/``) and ``matta component <name>`` call these functions and nothing else, so a
step logs the same thing however it is started. Each component starts with `start_task`, which refuses to run in
an image built from other code than the pipeline's (``matta_core.image_identity``) before any work is done. Each
step function calls the family the ``task`` parameter selects (`matta_core.families.registry.family_for`), which
runs its step module, opens a child run under the pipeline's parent run when
tracking is on, logs params, metrics, lineage tags and models there, and returns the step's scalar metrics (which
the component also publishes as its ``Output[Metrics]``).

Tracking is off when `Tracking.parent_run_id` is empty: then MLflow is not even imported (a ~1 s import per
step process), which is how the benchmark measures orchestration alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matta_core.artifacts.layout import (
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
from matta_core.config import (
    ConfigError,
    DataSection,
    ExtractionSection,
    ReleaseSection,
    TeacherSection,
    TrainSection,
)
from matta_core.config_base import Section, load_section
from matta_core.families.registry import TASKS, family_for
from matta_core.tracking.step_records import Tracking, lineage, log_step, parse_widths, widths_label

__all__ = [
    "Tracking", "evaluate", "extract", "load_model_section", "load_section", "parse_widths", "prepare",
    "publish_metrics", "release", "report", "report_metrics", "start_task", "teacher", "train", "widths_label",
    "write_release_view", "write_report_views",
]

log = logging.getLogger(__name__)


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


def load_model_section(task: str, text: str) -> Section:
    """The model section of `task`'s family from its JSON pipeline parameter."""
    return load_section(family_for(task).section, text, "model")


# --- the steps: each calls the task's family (`matta_core.families.registry`) ---------------------------------


def prepare(data: DataSection, out_dir: str, tracking: Tracking, task: str = TASKS[0]) -> dict[str, float]:
    """Step 1: validate, dedupe and split the data; log row counts and the data's content hash."""
    return family_for(task).prepare(data, out_dir, tracking)


def teacher(
    prepared_dir: str, out_dir: str, teacher_section: TeacherSection, data: DataSection, cache_dir: str,
    tracking: Tracking, task: str = TASKS[0],
) -> dict[str, float]:
    """Step 2: the Teacher's outputs on every split, through the content-addressed cache."""
    return family_for(task).teacher(prepared_dir, out_dir, teacher_section, data, cache_dir, tracking)


def train(
    prepared_dir: str, teacher_dir: str, out_dir: str, model: Section, train_section: TrainSection,
    data: DataSection, tracking: Tracking, task: str = TASKS[0], init_from_version: str = "",
) -> tuple[dict[str, float], list[str]]:
    """Step 3: train the TA+Student (MatTA) and the baselines; returns metrics and the baselines' sub-folders.
    `init_from_version`: what the run's first task read ``model.init_from`` to name (`ModelFamily.pin_init_from`).

    Each arm gets its own MLflow run nested under the train run (``train-matta``, ``train-kd``, ...), fed by
    `MLflowMetricsCallback`, so the arms' loss curves sit side by side instead of overwriting each other.
    The baseline models are logged by this step, which is the one that writes them.
    """
    family = family_for(task)
    if not isinstance(model, family.section):
        raise ConfigError(f"task {task!r} takes a {family.section.__name__} model section, got "
                          f"{type(model).__name__}")
    return family.train(prepared_dir, teacher_dir, out_dir, model, train_section, data, tracking,
                        init_from_version=init_from_version)


def extract(
    trained_dir: str, widths: Sequence[Any], out_dir: str, prepared_dir: str, data: DataSection, tracking: Tracking,
    task: str = TASKS[0], extraction: ExtractionSection | None = None,
) -> dict[str, float]:
    """Step 4: cut one standalone model out of the nested one (parity-checked), stored as `extraction` says
    (None: its defaults); log it as an MLflow model."""
    return family_for(task).extract(trained_dir, widths, out_dir, prepared_dir, data, tracking, extraction)


def evaluate(
    model_dir: str, prepared_dir: str, out_dir: str, data: DataSection, measure_speed: bool, tracking: Tracking,
    task: str = TASKS[0], teacher_dir: str | None = None,
) -> dict[str, float]:
    """Step 5: quality and serving cost of one standalone model on the test split.

    A causal-LM model is scored on the ids the Teacher read, so `teacher_dir` (the Teacher step's folder) is
    required for ``task: causal_lm``; the classifier reads its test rows from `prepared_dir`.
    """
    return family_for(task).evaluate(model_dir, prepared_dir, teacher_dir, out_dir, data, measure_speed, tracking)


def report(
    evaluation_dirs: Sequence[str], teacher_dir: str | None, out_dir: str, tracking: Tracking,
    task: str = TASKS[0], *, prepared_dir: str | None = None, trained_dir: str | None = None,
) -> dict[str, Any]:
    """Step 6: the report (table, Pareto front, chart); logged to the report run and to the parent run.

    With the prepare and train steps' folders, the classifier's report header also shows the quarantined rows per
    reason and every data and training warning.

    The parent run gets the chart, the HTML report and one ``accuracy/<model>`` metric per model (for a causal
    LM: ``perplexity/<model>`` and ``cloze_accuracy/<model>``), so runs can be compared in MLflow's run table
    without opening their children.
    """
    family = family_for(task)
    evaluations = [json.loads((Path(d) / EVALUATION).read_text()) for d in evaluation_dirs]
    with tracking.step("report") as run_id:
        result = family.report(evaluations, teacher_dir, out_dir, prepared_dir=prepared_dir, trained_dir=trained_dir)
        metrics = family.report_metrics(result)
        if run_id is not None:
            from matta_core.tracking import log_figure, log_json, log_metrics, log_report

            out = Path(out_dir)
            teacher = result.get("teacher", {})
            log_step(run_id, {"models": len(result["models"])}, metrics)
            lineage(run_id, tracking, data_content_hash=_first(evaluations, "data_content_hash"),
                    teacher_cache_key=teacher.get("cache_key"), teacher_fingerprint=teacher.get("fingerprint"))
            for target in (run_id, tracking.parent_run_id):
                log_report(out / REPORT_HTML, run_id=target)
                log_figure(out / PARETO_PNG, run_id=target)
            log_report(out / REPORT_MD, run_id=run_id)
            log_json(json.loads((out / REPORT_JSON).read_text()), "report", run_id=run_id)
            log_metrics(metrics, run_id=tracking.parent_run_id)
    return result


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The per-model metrics of a report (``accuracy/<model>``, or for a causal LM ``perplexity/<model>`` and
    ``cloze_accuracy/<model>``), by the family named in its ``task`` field (the classifier's reports have none)."""
    return family_for(report.get("task", TASKS[0])).report_metrics(report)


def write_report_views(report_dir: str, html_path: str, markdown_path: str) -> None:
    """Copy the report as single files a viewer renders alone (the KFP UI): HTML and Markdown, chart inlined."""
    from matta_core.artifacts.report_views import markdown_with_inline_chart

    for path, text in ((html_path, (Path(report_dir) / REPORT_HTML).read_text()),
                       (markdown_path, markdown_with_inline_chart(report_dir))):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)


def release(
    evaluation_dirs: Sequence[str], model_dirs: Sequence[str], trained_dir: str, teacher_dir: str | None,
    prepared_dir: str, data: DataSection, section: ReleaseSection, out_dir: str, tracking: Tracking,
    task: str = TASKS[0],
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
    family = family_for(task)
    skipped = _release_skip_reason(section, tracking, family.release_skip_reason)
    if skipped is not None:
        log.warning("release skipped: %s", skipped)
        (out / GATE_REPORT).write_text(f"# Release gate: skipped\n\n{skipped}\n")
        _write_json(out / RELEASE_SUMMARY, {"status": "skipped", "reason": skipped, "classes": {}})
        return {"skipped": 1.0, "size_classes": float(len(section.size_classes)), "passed": 0.0}

    from matta_core.release.step import release_step

    evaluations = [json.loads((Path(d) / EVALUATION).read_text()) for d in evaluation_dirs]
    decisions = release_step(
        evaluations,
        run_models={family.model_name(d): d for d in model_dirs},
        baseline_model_dir=_baseline_dir(trained_dir, section.baseline_arm),
        config=section,
        tracking_uri=tracking.tracking_uri or None,
        pipeline_run_id=tracking.parent_run_id,
        lineage={"data_content_hash": _first(evaluations, "data_content_hash"),
                 "teacher_cache_key": _first(evaluations, "teacher_cache_key"),
                 "teacher_fingerprint": _teacher_info(teacher_dir).get("fingerprint"),
                 "code_version": tracking.code_version or None},
        test_rows=family.eval_rows(prepared_dir, data),
        out_dir=out,
        parent_run_id=tracking.parent_run_id,
        # The registered version training started from, if any: that class is gated against it. Read from the
        # trained folder, which a cached train step still hands over (its MLflow run is an older run's).
        init_from=json.loads((Path(trained_dir) / TRAIN_RESULT).read_text()).get("init_from"),
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


def _release_skip_reason(section: ReleaseSection, tracking: Tracking, family_reason: str | None) -> str | None:
    if not section.enabled:
        return "release.enabled is false: no model was gated or registered."
    if family_reason is not None:
        return family_reason
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
