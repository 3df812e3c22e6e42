"""Steps 4 and 5 in one task: cut every width out of the nested model, evaluate each, and evaluate the baselines.

One task, not one per width: every task is a process (on a cluster, a pod: 10-60 s to start) that pays its
imports (~2-3 s here) before any work, while cutting and scoring one width takes about a second on the default
run. Run one after another in one process, the batch-1 latencies are also measured with nothing running beside
them (kfp.local runs two tasks at once). The cost: widths are no longer evaluated on several machines at once,
which pays off only when one width's evaluation takes minutes.

Output layout (`numbered_dir`): ``<models>/<i>/`` holds width i's standalone model, ``<evaluations>/<i>/`` its
``evaluation.json``, the widths first in their given order, then the baselines; readers take the sub-folders in
sorted order (`numbered_subdirs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matta_core.config import DataSection, ExtractionSection
from matta_core.families.registry import TASKS
from matta_core.steps.tracked import Tracking, evaluate, extract


def numbered_dir(root: str | Path, index: int) -> str:
    """The sub-folder of `root` for item `index`: zero-padded, so sorting the names keeps the order."""
    return str(Path(root) / f"{index:03d}")


def numbered_subdirs(root: str | Path) -> list[str]:
    """The sub-folders `numbered_dir` made under `root`, in their order."""
    return [str(p) for p in sorted(Path(root).iterdir()) if p.is_dir() and p.name.isdigit()]


def extract_and_evaluate_all(
    trained_dir: str, widths: Sequence[Sequence[Any]], baseline_subdirs: Sequence[str], prepared_dir: str,
    teacher_dir: str, data: DataSection, measure_speed: bool, models_dir: str, evaluations_dir: str,
    tracking: Tracking, task: str = TASKS[0], extraction: ExtractionSection | None = None,
) -> dict[str, float]:
    """Extract (stored as `extraction` says) and evaluate each of `widths` (into `models_dir` /
    `evaluations_dir`), then evaluate each baseline (`baseline_subdirs` of `trained_dir`); return every model's
    metrics, prefixed with its position and kind."""
    metrics: dict[str, float] = {}
    for index, width in enumerate(widths):
        model_dir = numbered_dir(models_dir, index)
        extracted = extract(trained_dir, width, model_dir, prepared_dir, data, tracking, task, extraction)
        evaluated = evaluate(model_dir, prepared_dir, numbered_dir(evaluations_dir, index), data, measure_speed,
                             tracking, task, teacher_dir=teacher_dir)
        metrics.update({f"width{index}_{key}": value for key, value in {**extracted, **evaluated}.items()})
    for offset, subdir in enumerate(baseline_subdirs):
        evaluated = evaluate(str(Path(trained_dir) / subdir), prepared_dir,
                             numbered_dir(evaluations_dir, len(widths) + offset), data, measure_speed, tracking,
                             task, teacher_dir=teacher_dir)
        metrics.update({f"baseline{offset}_{key}": value for key, value in evaluated.items()})
    return metrics
