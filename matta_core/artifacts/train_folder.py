"""The train step's folder, for every model family: each arm trained in turn, its metrics log, its resume points,
and what it leaves (the nested model for ``matta``, a standalone Student for each baseline).

    <out>/<arm>/metrics.jsonl      the arm's per-step metrics (`JsonlMetricsCallback`)
    <out>/nested/                  the trained nested model (MatTA)
    <out>/baselines/<arm>/         each baseline's standalone model
    <checkpoints>/<arm>/           the arm's resume points
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matta_core import storage
from matta_core.artifacts.layout import BASELINES_DIR, METRICS_LOG, NESTED_DIR
from matta_core.training.callbacks import Callback, JsonlMetricsCallback

#: `train_arm(arm, callbacks, checkpoint_dir) -> (trained model, result with .to_dict())`.
TrainArm = Callable[[str, list[Callback], str], tuple[Any, Any]]


def train_every_arm(
    arms: Sequence[str],
    out: Path,
    checkpoints: str,
    train_arm: TrainArm,
    save_nested: Callable[[Any, Path], object],
    save_baseline: Callable[[str, Any, Path], object],
    callbacks: Sequence[Callback] = (),
    arm_callbacks: Callable[[str], Sequence[Callback]] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Train `arms` in order (``matta`` first) and write what each leaves; returns each arm's result (as a dict)
    and the baselines' folders relative to `out`.

    `callbacks` observe every arm; `arm_callbacks(arm)` is called as each arm starts and its callbacks observe that
    arm only (one MLflow run per arm, so the arms' loss curves do not overwrite each other).
    """
    results: dict[str, Any] = {}
    baseline_dirs: dict[str, str] = {}
    for arm in arms:
        hooks: list[Callback] = [JsonlMetricsCallback(out / arm / METRICS_LOG), *callbacks]
        if arm_callbacks is not None:
            hooks += arm_callbacks(arm)
        trained, result = train_arm(arm, hooks, storage.join(checkpoints, arm))
        results[arm] = result.to_dict()
        if arm == "matta":
            save_nested(trained, out / NESTED_DIR)
        else:
            save_baseline(arm, trained, out / BASELINES_DIR / arm)
            baseline_dirs[arm] = f"{BASELINES_DIR}/{arm}"
    return results, baseline_dirs
