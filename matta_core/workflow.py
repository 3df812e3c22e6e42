"""Run every step in order, in this process: the plain-function path (no KFP), used by `matta demo` and as the
reference the KFP pipeline is measured against."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matta_core.config import PipelineConfig
from matta_core.steps import evaluate_step, extract_step, prepare_step, report_step, teacher_step, train_step
from matta_core.steps.layout import BASELINES_DIR


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
    report = timed("report", report_step, evaluations, teacher, str(out / "report"))
    return LocalRun(out, report, seconds)
