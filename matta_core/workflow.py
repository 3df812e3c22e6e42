"""Run every step in order, in this process: the plain-function path (no KFP), used by `matta demo` and as the
reference the KFP pipeline is measured against. The steps are those of the family the run's ``task`` selects,
with tracking off."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matta_core.artifacts.layout import BASELINES_DIR, EVALUATION
from matta_core.config import PipelineConfig
from matta_core.families.registry import family_for
from matta_core.tracking.step_records import Tracking


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

    # The family's steps with tracking off (`matta demo` records nothing), in the pipeline's folder layout.
    family, off = family_for(config.task), Tracking()
    prepared, teacher, trained = str(out / "prepared"), str(out / "teacher"), str(out / "trained")
    timed("prepare", family.prepare, config.data, prepared, off)
    timed("teacher", family.teacher, prepared, teacher, config.teacher, config.data, config.cache_dir, off,
          progress=progress)
    timed("train", family.train, prepared, teacher, trained, config.model, config.train, config.data, off,
          progress=progress)
    model_dirs = []
    for widths in config.widths:
        model_dir = out / "models" / family.widths_label(widths)
        timed("extract", family.extract, trained, widths, str(model_dir), prepared, config.data, off,
              config.extraction)
        model_dirs.append(model_dir)
    model_dirs += [Path(trained) / BASELINES_DIR / arm for arm in config.train.baselines]
    evaluations = []
    for model_dir in model_dirs:
        eval_dir = out / "evaluations" / model_dir.name
        timed("evaluate", family.evaluate, str(model_dir), prepared, teacher, str(eval_dir), config.data,
              config.measure_speed, off)
        evaluations.append(json.loads((eval_dir / EVALUATION).read_text()))
    report = timed("report", family.report, evaluations, teacher, str(out / "report"), prepared_dir=prepared,
                   trained_dir=trained)
    return LocalRun(out, report, seconds)
