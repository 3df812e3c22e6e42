"""What every pipeline step records in MLflow, whichever model family runs: its child run, params, metrics, lineage.

`Tracking` says where a step records itself; the helpers here log a step's params and metrics, its lineage tags,
one MLflow run per training arm, and the arms' summary metrics. Each family's steps
(`matta_core.families.<family>.family`) use them, so both families leave the same run tree behind.

MLflow is imported only when tracking is on (an empty `Tracking.parent_run_id` turns it off): ~1 s per step
process, which is how the benchmark measures orchestration alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matta_core.artifacts.layout import TEACHER_INFO


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


def log_step(run_id: str, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """A step run's params (nested mappings flattened to dotted keys) and metrics."""
    from matta_core.tracking import log_metrics, log_params_flat

    log_params_flat(params, run_id=run_id)
    log_metrics(metrics, run_id=run_id)


def lineage(
    run_id: str,
    tracking: Tracking,
    *,
    data_content_hash: str | None = None,
    teacher_cache_key: str | None = None,
    teacher_fingerprint: str | None = None,
    widths: Sequence[int] | None = None,
    extra: Mapping[str, str] | None = None,
) -> None:
    """The lineage tags of a step run: which data, Teacher outputs, code and widths it came from."""
    from matta_core.tracking import set_lineage_tags

    set_lineage_tags(data_content_hash, teacher_cache_key, tracking.code_version or None,
                     teacher_fingerprint=teacher_fingerprint, widths=None if widths is None else list(widths),
                     extra=None if extra is None else dict(extra), run_id=run_id)


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
            log_step(arm_run_id, {"arm": arm}, {})
            lineage(arm_run_id, tracking, data_content_hash=teacher_info["data_content_hash"],
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


def numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric fields of a record (booleans and unmeasured speed fields left out)."""
    return {
        key: float(value)
        for key, value in record.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
    }


def parse_widths(widths: Sequence[Any]) -> list[int]:
    """Per-layer widths from a pipeline parameter: KFP hands list items over as floats (``[96.0]``)."""
    from matta_core.config_base import ConfigError

    parsed = []
    for width in widths:
        if isinstance(width, bool) or float(width) != int(float(width)):
            raise ConfigError(f"widths {list(widths)}: every entry must be a whole number, got {width!r}")
        parsed.append(int(float(width)))
    return parsed


def widths_label(widths: Sequence[int]) -> str:
    """``[256, 64]`` -> ``256x64``: the width part of folder and run names (as in `run_local`)."""
    return "x".join(str(w) for w in widths)
