"""Hooks into a training run: the seam where tracking backends (MLflow, a progress bar, a metrics file) plug in.

The trainer calls, in order: `on_train_start` once, `on_step_end` after every optimizer step, `on_checkpoint`
after each checkpoint is published, and `on_train_end` once with the result. A callback overrides only what it
needs. Callbacks observe; they must not touch the model's RNG streams, or a resumed run stops matching.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from matta_core.training.config import TrainConfig
    from matta_core.training.result import TrainResult


class Callback:
    """No-op base class; subclass and override the hooks you need."""

    def on_train_start(self, model_config: Any, config: TrainConfig, start_step: int) -> None:
        """Before the first step; `start_step` > 0 when the run resumes from a checkpoint. `model_config` is the
        model family's config (e.g. a `ClassifierConfig` or a `DecoderConfig`), as the family's trainer got it."""

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        """After optimizer step `step` (1-based): the loss terms of that step, plus `lr` and any `val/*` metrics."""

    def on_checkpoint(self, step: int, path: Path) -> None:
        """After the checkpoint of step `step` was published at `path`."""

    def on_train_end(self, result: TrainResult) -> None:
        """After the last step (and final checkpoint)."""


class HistoryCallback(Callback):
    """Keeps every step's metrics in memory, as `records` of {"step": ..., **metrics}."""

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        self.records.append({"step": step, **metrics})


class JsonlMetricsCallback(Callback):
    """Appends one JSON line per `every` steps to `path`: {"step": ..., **metrics}.

    On a resumed run, lines for steps after the resume point (written by the interrupted process, and about to be
    recomputed) are dropped first, so the file ends up with exactly one line per logged step.
    """

    def __init__(self, path: str | Path, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.path = Path(path)
        self.every = every

    def on_train_start(self, model_config: Any, config: TrainConfig, start_step: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= start_step]
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if step % self.every == 0:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")


class ProgressBar(Callback):
    """A tqdm bar with the step rate (tqdm's own) and the mean total loss over the last `log_every` steps."""

    def __init__(self, total_steps: int, log_every: int, **tqdm_kwargs: Any) -> None:
        self.total_steps = total_steps
        self.log_every = log_every
        self.tqdm_kwargs = tqdm_kwargs
        self._bar: Any = None
        self._window: list[float] = []

    def on_train_start(self, model_config: Any, config: TrainConfig, start_step: int) -> None:
        self._bar = tqdm(total=self.total_steps, initial=start_step, unit="step", desc=f"train {config.arm}",
                         dynamic_ncols=True, **self.tqdm_kwargs)

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        self._window.append(metrics["total"])
        self._bar.update(1)
        if step % self.log_every == 0 or step == self.total_steps:
            self._bar.set_postfix(loss=f"{sum(self._window) / len(self._window):.4f}", refresh=False)
            self._window.clear()

    def on_train_end(self, result: TrainResult) -> None:
        self.close()

    def close(self) -> None:
        """Close the bar (idempotent; the trainer also calls it when a run fails)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
