"""``matta run``: the whole pipeline on this machine through ``kfp.local``, under one MLflow parent run.

Every step runs as its own process (``SubprocessRunner(use_venv=False)``: the current environment, no pip), as
on a cluster, with its artifacts under ``<output_dir>/kfp`` (the pipeline root). The MLflow parent run is created
here first; each step attaches its child run to it by id. The report is copied to ``<output_dir>/report``, where
``matta demo`` puts it too, and the release step's folder (gate report, decisions, A/B handoffs) to
``<output_dir>/release``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matta_core import storage
from matta_core.artifacts.layout import GATE_REPORT, RELEASE_SUMMARY, REPORT_HTML, REPORT_MD, TRAIN_RESULT
from matta_core.config import PipelineConfig
from matta_core.environment import environment
from pipelines.preflight import preflight
from pipelines.run_history import FAILED, FINISHED, RUNNING, RunHistory, RunRecord, prune_checkpoints, prune_run_folders
from pipelines.run_lock import RunFolderLock

PIPELINE_ROOT_DIR = "kfp"
RUNNERS = ("subprocess", "docker")
REPORT_DIR = "report"
RELEASE_DIR = "release"
#: The outputs published out of the pipeline root, as (task folder, output name) in the run's folder: the pipeline
#: returns none (its steps sit inside an ExitHandler, which KFP allows no pipeline outputs from).
REPORT_OUTPUT = ("write-report", "report")
RELEASE_OUTPUT = ("release-models", "release")
#: The tasks that may be served from the step cache, in pipeline order (their task folders in a run's folder).
CACHEABLE_TASKS = ("prepare-data", "cache-teacher-outputs", "train-models", "extract-and-evaluate")
#: Where a local run keeps training checkpoints when `train.checkpoint_dir` is not set, so a rerun resumes them.
CHECKPOINTS_DIR = "checkpoints"


class PipelineFailed(RuntimeError):
    """A step of a local pipeline run failed; its log was printed above (KFP streams each step's output)."""


@dataclass(frozen=True)
class PipelineRunResult:
    """Where a local pipeline run put its artifacts and its MLflow records."""

    output_dir: Path
    pipeline_root: Path
    report_dir: Path
    seconds: float
    tracking_uri: str | None = None
    run_id: str | None = None
    experiment_id: str | None = None
    # The release step's folder (gate report, decisions, handoffs), copied out of the pipeline root.
    release_dir: Path | None = None
    # What this run took over from earlier runs into the folder: the unfinished run it resumed (its key), the
    # steps served from the step cache, training resumed per arm (arm -> (start step, total steps)), and the
    # old pipeline roots it pruned.
    resumed_from: str | None = None
    reused_steps: tuple[str, ...] = ()
    training_resumed: dict[str, tuple[int, int]] = field(default_factory=dict)
    pruned_runs: tuple[str, ...] = ()

    @property
    def report_html(self) -> Path:
        return self.report_dir / REPORT_HTML

    @property
    def report_md(self) -> Path:
        return self.report_dir / REPORT_MD

    @property
    def release_summary(self) -> dict[str, Any]:
        """The release step's ``release.json``: its status (gated/skipped) and the decision per size class."""
        if self.release_dir is None or not (self.release_dir / RELEASE_SUMMARY).is_file():
            return {}
        return dict(json.loads((self.release_dir / RELEASE_SUMMARY).read_text()))

    def where_to_look(self) -> list[str]:
        """Lines telling a person where the report, the release and the MLflow runs are."""
        lines = [*self._reuse_lines(), f"report: {self.report_html}", f"        {self.report_md}"]
        lines += self._release_lines()
        lines.append(f"artifacts: {self.pipeline_root}")
        if self.tracking_uri and self.run_id:
            lines.append(f"MLflow: parent run {self.run_id} (experiment {self.experiment_id}) in {self.tracking_uri}")
            if self.tracking_uri.startswith(("http://", "https://")):
                base = self.tracking_uri.rstrip("/")
                lines.append(f"        open {base}/#/experiments/{self.experiment_id}/runs/{self.run_id}")
            else:
                lines.append(f"        view with: mlflow ui --backend-store-uri {self.tracking_uri}")
            if self.release_summary.get("status") == "gated":
                lines.append(f"registry: matta models list --tracking-uri {self.tracking_uri}")
        return lines

    def _reuse_lines(self) -> list[str]:
        lines = []
        if self.resumed_from:
            lines.append(f"resumed: the unfinished run {self.resumed_from} (same config and code, same MLflow run)")
        if self.reused_steps:
            lines.append(f"reused from the step cache (same inputs): {', '.join(self.reused_steps)}")
        for arm, (start, total) in sorted(self.training_resumed.items()):
            lines.append(f"training {arm}: continued from checkpoint step {start} of {total}")
        if self.pruned_runs:
            lines.append(f"pruned {len(self.pruned_runs)} old pipeline root(s): {', '.join(self.pruned_runs)}")
        return lines

    def _release_lines(self) -> list[str]:
        if self.release_dir is None:
            return []
        summary = self.release_summary
        if summary.get("status") != "gated":
            return [f"release: skipped, see {self.release_dir / GATE_REPORT}"]
        lines = [f"release: {self.release_dir / GATE_REPORT}"]
        for size_class, decision in sorted(summary.get("classes", {}).items()):
            if decision.get("passed"):
                alias = "@challenger" if decision.get("challenger_set") else "aliases unchanged"
                lines.append(f"         {size_class}: {decision['candidate']} -> {decision['registered_model']} "
                             f"v{decision['version']} ({alias}), handoff {self.release_dir / decision['handoff']}")
            else:
                lines.append(f"         {size_class}: rejected ({', '.join(decision.get('failed_checks') or [])})")
        return lines


def run_pipeline(
    config: PipelineConfig,
    *,
    track: bool = True,
    enable_caching: bool = True,
    pipeline: Any = None,
    runner: str = "subprocess",
    image: str | None = None,
    package: Path | None = None,
    engine: str | None = None,
) -> PipelineRunResult:
    """Lock the output folder, check the run (`preflight`), open the MLflow parent run, and run the pipeline
    through ``kfp.local``.

    Raises `pipelines.run_lock.RunFolderBusy` when another live run holds the output folder,
    `matta_core.config.ConfigError` / `PreflightError` before anything runs, `PipelineFailed` when a step fails
    (the parent run then ends FAILED). `track=False` runs without MLflow. `pipeline` replaces the pipeline (a loaded
    compiled YAML, for tests); default `matta_pipeline`.

    `enable_caching` (default on, as on a cluster): kfp.local's step cache under the pipeline root. The steps that
    may be cached take nothing that changes from run to run (they find the parent run by the run's identity), so
    a rerun with the same config, code and data reuses every step that finished, and a run into a folder whose last
    run did not finish resumes it: training continues from its newest checkpoint (kept under
    ``<output_dir>/checkpoints`` unless `train.checkpoint_dir` says otherwise). The result says what was reused.

    `runner`: "subprocess" (the default: each task a process in this environment) or "docker" (each task in the
    project's image `image`, default ``default_image_tag()``, on this machine's container engine, `engine`;
    `package` is then a compiled YAML to run instead of this tree's pipeline; see `pipelines.container_runner`).
    Raises `pipelines.container_runner.ContainerRunError` when a containerised run cannot start.
    """
    if runner not in RUNNERS:
        raise ValueError(f"runner {runner!r} is not one of: {', '.join(RUNNERS)}")
    from matta_core.tracking import resolve_tracking_uri

    out = Path(config.output_dir).absolute()
    tracking_uri = resolve_tracking_uri(config.tracking_uri, out) if track else None
    preflight(config, tracking_uri=tracking_uri)  # reads only: a refused run leaves nothing behind, not even a lock
    with RunFolderLock(out) as lock:
        if lock.taken_over is not None:
            print(f"output folder {out}: taking over the lock left by {lock.taken_over.describe()}, which is no "
                  "longer running", flush=True)
        return _run_in_folder(config, out, tracking_uri, enable_caching=enable_caching, pipeline=pipeline,
                              runner=runner, image=image, package=package, engine=engine)


def _run_in_folder(config: PipelineConfig, out: Path, tracking_uri: str | None, *, enable_caching: bool,
                   pipeline: Any, runner: str, image: str | None, package: Path | None,
                   engine: str | None) -> PipelineRunResult:
    """`run_pipeline` once the output folder is ours: record the run, run it, say what it reused, prune."""
    from matta_core.cluster.run_identity import KFP_RUN_ID_ENV
    from pipelines.code_version import code_version
    from pipelines.run_history import run_fingerprint

    history = RunHistory(out)
    fingerprint = run_fingerprint(config.model_dump(mode="json"), code_version())
    record = history.unfinished(fingerprint)
    if record is not None:
        print(f"resuming the unfinished {record.describe()} (same config and code, attempt {record.attempts + 1}): "
              + ("steps that finished come from the step cache, " if enable_caching else
                 "--no-cache: every step runs again, ")
              + "training continues from its newest checkpoint", flush=True)
        record.status, record.ended_at, record.attempts = RUNNING, None, record.attempts + 1
        history.save()
    else:
        record = RunRecord(f"local-{uuid.uuid4().hex[:12]}", fingerprint, time.time())
        history.start(record)
    config = _local_paths(config, out)
    started = time.perf_counter()
    try:
        # The run's identity, as KFP gives each task pod its run id: the cacheable steps find the parent run by it.
        with environment({KFP_RUN_ID_ENV: record.run_key}):
            result = _run_tracked(config, out, tracking_uri, history, record, enable_caching=enable_caching,
                                  pipeline=pipeline, runner=runner, image=image, package=package, engine=engine)
    except BaseException:
        record.status, record.ended_at = FAILED, time.time()
        history.save()
        raise
    record.status, record.ended_at = FINISHED, time.time()
    record.reused_steps = list(result.reused_steps)
    history.save()
    pruned = tuple(prune_run_folders(out / PIPELINE_ROOT_DIR, config.keep_runs, current=record.run_folder))
    if pruned and config.train.checkpoint_dir == str(out / CHECKPOINTS_DIR):
        # Checkpoints no run kept since the oldest pipeline root still here can only be resumed by a rerun of a
        # pruned run's config; the step cache (or a new training) serves that rerun just as well.
        oldest = min((r.started_at for r in history.runs[-config.keep_runs:]), default=time.time())
        prune_checkpoints(out / CHECKPOINTS_DIR, oldest)
    return replace(result, seconds=time.perf_counter() - started, pruned_runs=pruned)


def _local_paths(config: PipelineConfig, out: Path) -> PipelineConfig:
    """Absolute local paths (steps are other processes; reruns from elsewhere must find the same cache), and the
    training checkpoints in the output folder unless `train.checkpoint_dir` names a place, so a rerun resumes."""
    cache_dir = config.cache_dir if not storage.is_local(config.cache_dir) else str(Path(config.cache_dir).absolute())
    train = config.train
    if train.checkpoint_dir is None:
        train = train.model_copy(update={"checkpoint_dir": str(out / CHECKPOINTS_DIR)})
    return config.model_copy(update={"cache_dir": cache_dir, "train": train})


def _run_tracked(config: PipelineConfig, out: Path, tracking_uri: str | None, history: RunHistory,
                 record: RunRecord, *, enable_caching: bool, pipeline: Any, runner: str, image: str | None,
                 package: Path | None, engine: str | None) -> PipelineRunResult:
    """Open the parent run (when tracking; a resumed run reopens its own) and run the pipeline; the result before
    pruning."""
    if pipeline is None:
        from pipelines.matta_pipeline import matta_pipeline as pipeline
    from pipelines.code_version import code_version

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        kfp_runner: Any = None
        task_tracking_uri = tracking_uri or ""
        if tracking_uri is not None:
            from matta_core.tracking.outage import tracking_outages

            # Bounded MLflow retries for this process and the steps (set before the containers' environment is
            # taken from ours); a server that stops answering: TrackingUnavailable.
            stack.enter_context(tracking_outages(tracking_uri, config.tracking_retry_seconds))
        if runner == "docker":
            from matta_core.image import default_image_tag
            from pipelines.container_runner import compiled_for_image, docker_session

            session = stack.enter_context(docker_session(
                config, out / PIPELINE_ROOT_DIR, image or default_image_tag(), code_version(), task_tracking_uri,
                engine=engine))
            kfp_runner, config, task_tracking_uri = session.runner, session.config, session.tracking_uri
            pipeline = compiled_for_image(session.image, package)
        if tracking_uri is None:
            run_dir = _run(pipeline, config, out, enable_caching, kfp_runner, tracking_uri="", parent_run_id="")
            record.run_folder = run_dir.name
            return _result(out, run_dir, time.perf_counter() - started, record)

        from matta_core.cluster.run_identity import current_run_key
        from matta_core.tracking import log_params_flat, pipeline_run
        from matta_core.tracking import tags as T

        run_name = f"{config.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        tags = {T.PIPELINE: config.name, T.CODE_VERSION: code_version(), T.RUN_KEY: current_run_key()}
        with pipeline_run(task_tracking_uri, config.name, run_name, tags, output_dir=out,
                          description=f"matta run (kfp.local, {runner} runner), artifacts under "
                                      f"{out / PIPELINE_ROOT_DIR}", resume_run_id=record.parent_run_id) as parent:
            if parent.run_id != record.parent_run_id:  # a new run (params are logged once: MLflow keeps them)
                log_params_flat(config.model_dump(mode="json"), run_id=parent.run_id)
            record.parent_run_id = parent.run_id
            history.save()  # now: a killed attempt's successor must reopen this run
            run_dir = _run(pipeline, config, out, enable_caching, kfp_runner, tracking_uri=parent.tracking_uri,
                           parent_run_id=parent.run_id)
            record.run_folder = run_dir.name
    # A containerised run's tasks reached the store through a temporary server: name the store itself.
    return _result(out, run_dir, time.perf_counter() - started, record, tracking_uri, parent.run_id,
                   parent.experiment_id)


def _result(out: Path, run_dir: Path, seconds: float, record: RunRecord, tracking_uri: str | None = None,
            run_id: str | None = None, experiment_id: str | None = None) -> PipelineRunResult:
    """Publish the report and the release out of the run's folder, and say what the run reused."""
    return PipelineRunResult(
        out, out / PIPELINE_ROOT_DIR, _publish(run_dir, REPORT_OUTPUT, out / REPORT_DIR), seconds, tracking_uri,
        run_id, experiment_id, release_dir=_publish(run_dir, RELEASE_OUTPUT, out / RELEASE_DIR),
        resumed_from=record.run_key if record.attempts > 1 else None,
        reused_steps=tuple(t for t in CACHEABLE_TASKS if not (run_dir / t).is_dir()),
        training_resumed=_training_resumed(run_dir))


def _training_resumed(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Arm -> (start step, total steps) for the arms this run's train step resumed from a checkpoint."""
    summary = run_dir / "train-models" / "trained" / TRAIN_RESULT
    if not summary.is_file():
        return {}
    arms = json.loads(summary.read_text()).get("arms", {})
    return {arm: (int(r["start_step"]), int(r["steps"])) for arm, r in arms.items()
            if isinstance(r, dict) and int(r.get("start_step") or 0) > 0}


def _run(pipeline: Any, config: PipelineConfig, out: Path, enable_caching: bool, kfp_runner: Any = None,
         **tracking: str) -> Path:
    """Run the pipeline; return its run folder under the pipeline root (``<root>/<pipeline>-<timestamp>``)."""
    from kfp import local

    from pipelines.matta_pipeline import pipeline_arguments

    root = out / PIPELINE_ROOT_DIR
    local.init(runner=kfp_runner or local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               raise_on_error=True, enable_caching=enable_caching)
    before = set(root.iterdir()) if root.is_dir() else set()
    try:
        with warnings.catch_warnings():
            # Expected here, and repeated for every task: the project image's name is not a python:* image (we
            # run in this environment on purpose, which has what the image has), and display names are UI-only.
            warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message=r".*\['display_name'\] have no effect", category=UserWarning)
            pipeline(**pipeline_arguments(config, **tracking))
    except RuntimeError as error:
        raise PipelineFailed(f"the pipeline failed: {error} (each step's log is printed above)") from error
    # The pipeline returns no outputs (its steps sit inside an ExitHandler): its run is the folder it added.
    # (Not kfp.local's own `.kfp_cache`, which the first cached run adds beside it.)
    [run_dir] = [p for p in root.iterdir() if p.is_dir() and p not in before and not p.name.startswith(".")]
    return run_dir


def _publish(run_dir: Path, output: tuple[str, str], target: Path) -> Path:
    """Copy the output folder `output` (task, output name) of the run in `run_dir` to `target` (replacing an
    older one)."""
    if target.exists():
        shutil.rmtree(target)
    task, name = output
    shutil.copytree(run_dir / task / name, target)
    return target
