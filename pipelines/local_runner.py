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
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matta_core import storage
from matta_core.config import PipelineConfig
from matta_core.steps.layout import GATE_REPORT, RELEASE_SUMMARY, REPORT_HTML, REPORT_MD
from pipelines.preflight import preflight

PIPELINE_ROOT_DIR = "kfp"
RUNNERS = ("subprocess", "docker")
REPORT_DIR = "report"
RELEASE_DIR = "release"
#: The outputs published out of the pipeline root, as (task folder, output name) in the run's folder: the pipeline
#: returns none (its steps sit inside an ExitHandler, which KFP allows no pipeline outputs from).
REPORT_OUTPUT = ("write-report", "report")
RELEASE_OUTPUT = ("release-models", "release")


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
        lines = [f"report: {self.report_html}", f"        {self.report_md}"]
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
    enable_caching: bool = False,
    pipeline: Any = None,
    runner: str = "subprocess",
    image: str | None = None,
    package: Path | None = None,
    engine: str | None = None,
) -> PipelineRunResult:
    """Check the run (`preflight`), open the MLflow parent run, and run the pipeline through ``kfp.local``.

    Raises `matta_core.config.ConfigError` / `PreflightError` before anything runs, `PipelineFailed` when a
    step fails (the parent run then ends FAILED). `track=False` runs without MLflow. `enable_caching` turns on
    kfp.local's cache under the pipeline root; note that a tracked run's steps take the new parent run id as an
    input, so they hit the cache only within one run, while untracked runs reuse results across runs.
    `pipeline` replaces the pipeline (a loaded compiled YAML, for tests); default `matta_pipeline`.

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
    preflight(config, tracking_uri=tracking_uri)
    if pipeline is None:
        from pipelines.matta_pipeline import matta_pipeline as pipeline
    # Steps are other processes; an absolute cache path keeps them (and reruns from elsewhere) on one cache.
    cache_dir = config.cache_dir if not storage.is_local(config.cache_dir) else str(Path(config.cache_dir).absolute())
    config = config.model_copy(update={"cache_dir": cache_dir})

    from pipelines.code_version import code_version

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        kfp_runner: Any = None
        task_tracking_uri = tracking_uri or ""
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
            return PipelineRunResult(out, out / PIPELINE_ROOT_DIR, _publish(run_dir, REPORT_OUTPUT, out / REPORT_DIR),
                                     time.perf_counter() - started,
                                     release_dir=_publish(run_dir, RELEASE_OUTPUT, out / RELEASE_DIR))

        from matta_core.tracking import log_params_flat, pipeline_run
        from matta_core.tracking import tags as T

        run_name = f"{config.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        tags = {T.PIPELINE: config.name, T.CODE_VERSION: code_version()}
        with pipeline_run(task_tracking_uri, config.name, run_name, tags, output_dir=out,
                          description=f"matta run (kfp.local, {runner} runner), artifacts under "
                                      f"{out / PIPELINE_ROOT_DIR}") as parent:
            log_params_flat(config.model_dump(mode="json"), run_id=parent.run_id)
            run_dir = _run(pipeline, config, out, enable_caching, kfp_runner, tracking_uri=parent.tracking_uri,
                           parent_run_id=parent.run_id)
    # A containerised run's tasks reached the store through a temporary server: name the store itself.
    return PipelineRunResult(out, out / PIPELINE_ROOT_DIR, _publish(run_dir, REPORT_OUTPUT, out / REPORT_DIR),
                             time.perf_counter() - started, tracking_uri, parent.run_id, parent.experiment_id,
                             release_dir=_publish(run_dir, RELEASE_OUTPUT, out / RELEASE_DIR))


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
    [run_dir] = [p for p in root.iterdir() if p.is_dir() and p not in before]
    return run_dir


def _publish(run_dir: Path, output: tuple[str, str], target: Path) -> Path:
    """Copy the output folder `output` (task, output name) of the run in `run_dir` to `target` (replacing an
    older one)."""
    if target.exists():
        shutil.rmtree(target)
    task, name = output
    shutil.copytree(run_dir / task / name, target)
    return target
