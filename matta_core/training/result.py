"""What a training run did: the result every family's trainer returns and every callback's `on_train_end` gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matta_core.training.config import TrainConfig


@dataclass
class TrainResult:
    """What a run did. Loss dicts hold the named terms of the arm's loss (`total` always among them)."""

    arm: str
    steps: int
    # Seconds spent in the training loop (checkpoint writes included), summed over a run's resumed sessions.
    wall_seconds: float
    final_loss: dict[str, float]
    mean_loss: dict[str, float]
    # One record per `log_every` steps (and at evaluations and the end): loss terms averaged over the window.
    history: list[dict[str, float]]
    config: TrainConfig
    # 0 for a fresh run; the checkpoint step this session resumed from otherwise.
    start_step: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    # The last checkpoint published: a local path, or a URI when the checkpoint directory is remote.
    checkpoint: Path | str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the config as its dict, the checkpoint as a string)."""
        return {
            "arm": self.arm, "steps": self.steps, "wall_seconds": self.wall_seconds,
            "final_loss": self.final_loss, "mean_loss": self.mean_loss, "history": self.history,
            "config": self.config.to_dict(), "start_step": self.start_step, "validation": self.validation,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
        }
