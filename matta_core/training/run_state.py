"""A run's bookkeeping besides the model, optimizer and RNG states: the loss log and where the run stands. Both are
saved in every checkpoint's state.json and restored on resume, so a resumed run reports what an uninterrupted one
would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LossLog:
    """Loss bookkeeping that survives a resume: running sums (for means), the open history window, the history."""

    def __init__(self) -> None:
        self.count = 0
        self.sums: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.window_count = 0
        self.window_sums: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    def add(self, parts: dict[str, float]) -> None:
        """Count one step's loss terms."""
        self.count += 1
        self.window_count += 1
        self.last = dict(parts)
        for name, value in parts.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.window_sums[name] = self.window_sums.get(name, 0.0) + value

    def record(self, step: int, extra: dict[str, float]) -> None:
        """Close the window: append its means (and `extra`, e.g. validation metrics) to the history at `step`."""
        means = {name: total / self.window_count for name, total in self.window_sums.items()}
        self.history.append({"step": step, **means, **extra})
        self.window_count, self.window_sums = 0, {}

    def means(self) -> dict[str, float]:
        """Each term's mean over every step so far (resumed sessions included)."""
        return {name: total / self.count for name, total in self.sums.items()} if self.count else {}

    def to_dict(self) -> dict[str, Any]:
        """The log as JSON values, for state.json."""
        return {
            "count": self.count, "sums": self.sums, "last": self.last, "window_count": self.window_count,
            "window_sums": self.window_sums, "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossLog:
        """The log `to_dict` wrote."""
        log = cls()
        log.count, log.sums, log.last = int(data["count"]), dict(data["sums"]), dict(data["last"])
        log.window_count, log.window_sums = int(data["window_count"]), dict(data["window_sums"])
        log.history = [dict(record) for record in data["history"]]
        return log


@dataclass
class RunState:
    """Where a run stands: what a checkpoint restores besides the model, optimizer and RNG states."""

    log: LossLog = field(default_factory=LossLog)
    start_step: int = 0
    wall_seconds: float = 0.0
    validation: dict[str, float] = field(default_factory=dict)
