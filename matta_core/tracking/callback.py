"""Training metrics into MLflow, batched so that logging never slows a training step down.

A training step takes ~15 ms; one MLflow request (sqlite write or HTTP round trip) takes about as long. So
metrics are buffered in memory and sent with `MlflowClient.log_batch`, at most every `flush_every_s` seconds (or
when the buffer holds a full batch), and always at checkpoints and at the end.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.utils.validation import MAX_METRICS_PER_BATCH

from matta_core.tracking import tags as T
from matta_core.tracking.errors import TrackingError
from matta_core.tracking.runs import to_metrics
from matta_core.tracking.uri import resolve_tracking_uri

log = logging.getLogger(__name__)

#: Metrics kept while the store is unreachable before the oldest are dropped (about 10 minutes of a busy run).
MAX_PENDING = 200_000


class MLflowMetricsCallback:
    """Trainer callback: step metrics of every `every`-th step into the MLflow run `run_id`.

    Implements the trainer's callback protocol (`on_train_start`, `on_step_end`, `on_checkpoint`,
    `on_train_end`) by duck typing, so tracking does not import the training package. Validation metrics
    (``val/*``) are logged whenever they appear, even off the `every` grid, since they are rare and the point of
    the curve. A failed periodic flush is retried at the next one (training goes on); a failed final flush raises.
    """

    def __init__(
        self,
        run_id: str,
        every: int = 1,
        *,
        tracking_uri: str | None = None,
        flush_every_s: float = 5.0,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.run_id = run_id
        self.every = every
        self.flush_every_s = flush_every_s
        self.client = mlflow.MlflowClient(resolve_tracking_uri(tracking_uri))
        self.requests = 0  # log_batch calls made, for tests and for a reader wondering about overhead
        self._pending: list[Metric] = []
        self._last_flush = time.monotonic()

    def on_train_start(self, *args: Any, **kwargs: Any) -> None:
        """Record the step this session starts from (> 0 on resume; MLflow then holds both sessions' points)."""
        start_step = kwargs.get("start_step", args[2] if len(args) > 2 else 0)
        self.client.set_tag(self.run_id, T.TRAIN_START_STEP, str(int(start_step)))
        self._last_flush = time.monotonic()

    def on_step_end(self, step: int, metrics: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Buffer this step's metrics (all of them every `every` steps, ``val/*`` always); flush when due."""
        if step % self.every != 0:
            metrics = {k: v for k, v in metrics.items() if k.startswith("val/")}
        if metrics:
            self._pending.extend(to_metrics(metrics, step, int(time.time() * 1000)))
        if len(self._pending) >= MAX_METRICS_PER_BATCH or time.monotonic() - self._last_flush >= self.flush_every_s:
            self._flush(final=False)

    def on_checkpoint(self, step: int, path: Any, *args: Any, **kwargs: Any) -> None:
        """Flush, so everything up to a checkpoint is stored, and tag the run with the checkpoint."""
        self._flush(final=False)
        self.client.set_tag(self.run_id, T.TRAIN_CHECKPOINT, str(path))

    def on_train_end(self, result: Any = None, *args: Any, **kwargs: Any) -> None:
        """Flush the rest, plus the result's summary (``final/<loss term>``, ``train_wall_seconds``) if it has one."""
        steps = int(getattr(result, "steps", 0) or 0)
        summary = {f"final/{k}": v for k, v in (getattr(result, "final_loss", None) or {}).items()}
        if getattr(result, "wall_seconds", None) is not None:
            summary["train_wall_seconds"] = result.wall_seconds
        self._pending.extend(to_metrics(summary, steps))
        self._flush(final=True)

    def flush(self) -> None:
        """Send everything buffered now; raises `TrackingError` if the store refuses."""
        self._flush(final=True)

    def _flush(self, *, final: bool) -> None:
        self._last_flush = time.monotonic()
        while self._pending:
            batch = self._pending[:MAX_METRICS_PER_BATCH]
            try:
                self.client.log_batch(self.run_id, metrics=batch)
            except Exception as exc:
                if final:
                    raise TrackingError(
                        f"could not log {len(self._pending)} metrics to MLflow run {self.run_id}: {exc}"
                    ) from exc
                log.warning("MLflow log_batch failed (%s); keeping %d metrics for the next flush", exc,
                            len(self._pending))
                self._drop_overflow()
                return
            self.requests += 1
            del self._pending[:len(batch)]

    def _drop_overflow(self) -> None:
        overflow = len(self._pending) - MAX_PENDING
        if overflow > 0:
            log.warning("dropping the %d oldest unsent metrics (store unreachable for too long)", overflow)
            del self._pending[:overflow]
