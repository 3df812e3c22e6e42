"""When a training loop writes a checkpoint: every N steps, every T seconds of training, and at the end.

Steps alone serve runs whose length is known in steps (a cluster setting: ``cluster.checkpoint_every``). Seconds
make the default sensible for any run: a one-minute run writes one checkpoint at the end, an hour-long one loses
at most a minute of work when it is killed, whatever its step time (`train.checkpoint_every_seconds`).
"""

from __future__ import annotations

import time


class CheckpointSchedule:
    """``if schedule.due(done): save(); schedule.saved()`` inside a training loop."""

    def __init__(self, every_steps: int, every_seconds: float, total_steps: int) -> None:
        if every_steps < 0 or every_seconds < 0:
            raise ValueError(f"checkpoint intervals must be >= 0, got {every_steps} steps and {every_seconds} s")
        self.every_steps = every_steps
        self.every_seconds = every_seconds
        self.total_steps = total_steps
        self._last = time.monotonic()

    def due(self, done: int) -> bool:
        """Whether the step just finished (`done` steps so far) ends with a checkpoint."""
        if done == self.total_steps:
            return True
        if self.every_steps and done % self.every_steps == 0:
            return True
        return bool(self.every_seconds) and time.monotonic() - self._last >= self.every_seconds

    def saved(self) -> None:
        """Restart the clock: the next time-based checkpoint is `every_seconds` after this one."""
        self._last = time.monotonic()
