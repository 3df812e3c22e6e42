"""Run every step in order, in this process: the plain-function path (no KFP), used by `matta demo` and as the
reference the KFP pipeline is measured against. Both tasks: the classifier's steps (`matta_core.steps`) or, for
``task: causal_lm``, the language model's (`matta_core.steps.lm`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matta_core.config import ModelSection, PipelineConfig
from matta_core.steps.evaluate_step import evaluate_step
from matta_core.steps.extract_step import extract_step
from matta_core.steps.layout import BASELINES_DIR
from matta_core.steps.prepare_step import prepare_step
from matta_core.steps.report_step import report_step
from matta_core.steps.teacher_step import teacher_step
from matta_core.steps.train_step import train_step


@dataclass
class LocalRun:
    """Where a local run put its artifacts, and how long each step took."""

    output_dir: Path
    report: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def report_path(self) -> Path:
        return self.output_dir / "report" / "report.md"


def run_local(config: PipelineConfig, progress: bool = True) -> LocalRun:
    """Prepare, cache Teacher outputs, train, extract every width, evaluate, report: all under `output_dir`."""
    out = Path(config.output_dir).resolve()
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        return result

    if config.task == "causal_lm":
        return LocalRun(out, _run_lm_steps(config, out, timed, progress), seconds)
    assert isinstance(config.model, ModelSection)  # the config's validation pairs the section with the task

    prepared, teacher, trained = str(out / "prepared"), str(out / "teacher"), str(out / "trained")
    timed("prepare", prepare_step, config.data, prepared)
    timed("teacher", teacher_step, prepared, teacher, config.teacher, config.data, config.cache_dir, progress)
    timed("train", train_step, prepared, teacher, trained, config.model, config.train, config.data, progress=progress)
    evaluations = []
    model_dirs = []
    for widths in config.widths:
        model_dir = out / "models" / "x".join(str(w) for w in widths)
        timed("extract", extract_step, trained, widths, str(model_dir), prepared, config.data)
        model_dirs.append(model_dir)
    model_dirs += [Path(trained) / BASELINES_DIR / arm for arm in config.train.baselines]
    for model_dir in model_dirs:
        eval_dir = out / "evaluations" / model_dir.name
        evaluations.append(
            timed("evaluate", evaluate_step, str(model_dir), prepared, str(eval_dir), config.data, config.measure_speed)
        )
    report = timed("report", report_step, evaluations, teacher, str(out / "report"), prepared_dir=prepared,
                   trained_dir=trained)
    return LocalRun(out, report, seconds)


def _run_lm_steps(config: PipelineConfig, out: Path, timed: Any, progress: bool) -> dict[str, Any]:
    """The causal-LM steps in order, in the layout `run_local` uses; returns the report."""
    from matta_core.config import DecoderSection
    from matta_core.steps.lm import (
        lm_evaluate_step,
        lm_extract_step,
        lm_prepare_step,
        lm_report_step,
        lm_teacher_step,
        lm_train_step,
    )
    from matta_core.steps.lm.names import decoder_widths_label

    assert isinstance(config.model, DecoderSection)  # the config's validation pairs the section with the task
    prepared, teacher, trained = str(out / "prepared"), str(out / "teacher"), str(out / "trained")
    timed("prepare", lm_prepare_step, config.data, prepared)
    timed("teacher", lm_teacher_step, prepared, teacher, config.teacher, config.data, config.cache_dir, progress)
    timed("train", lm_train_step, prepared, teacher, trained, config.model, config.train, config.data,
          progress=progress)
    model_dirs = []
    for widths in config.widths:
        model_dir = out / "models" / decoder_widths_label(widths)
        timed("extract", lm_extract_step, trained, widths, str(model_dir))
        model_dirs.append(model_dir)
    model_dirs += [Path(trained) / BASELINES_DIR / arm for arm in config.train.baselines]
    evaluations = [
        timed("evaluate", lm_evaluate_step, str(d), teacher, str(out / "evaluations" / d.name), config.measure_speed)
        for d in model_dirs
    ]
    return dict(timed("report", lm_report_step, evaluations, teacher, str(out / "report")))
