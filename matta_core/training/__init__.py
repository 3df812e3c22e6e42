"""Training machinery every model family shares: the run config, batch order, determinism, optimizers, callbacks
and resumable, pickle-free checkpoints. Each family's trainer (`matta_core.families.<family>.trainer`) supplies
the model and the loss of one step.

Names are imported on first use (`matta_core.lazy_exports`): the run config imports `matta_core.training.config`
in every pipeline task, and that must not import the trainer (and torch) with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matta_core.lazy_exports import lazy_exports

# Exported names -> the module that defines them, imported on first use.
_EXPORTS = {
    "Callback": "matta_core.training.callbacks",
    "HistoryCallback": "matta_core.training.callbacks",
    "JsonlMetricsCallback": "matta_core.training.callbacks",
    "ProgressBar": "matta_core.training.callbacks",
    "Checkpoint": "matta_core.training.checkpoint",
    "CheckpointError": "matta_core.training.checkpoint",
    "latest_checkpoint": "matta_core.training.checkpoint",
    "list_checkpoints": "matta_core.training.checkpoint",
    "load_checkpoint": "matta_core.training.checkpoint",
    "ARMS": "matta_core.training.config",
    "DEVICES": "matta_core.training.config",
    "TrainConfig": "matta_core.training.config",
    "BatchOrder": "matta_core.training.order",
    "DeviceError": "matta_core.training.determinism",
    "resolve_device": "matta_core.training.determinism",
    "make_optimizer": "matta_core.training.optim",
    "optimizer_names": "matta_core.training.optim",
    "register_optimizer": "matta_core.training.optim",
    "TrainResult": "matta_core.training.result",
    "run_training": "matta_core.training.loop",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from matta_core.training.callbacks import Callback, HistoryCallback, JsonlMetricsCallback, ProgressBar
    from matta_core.training.checkpoint import (
        Checkpoint,
        CheckpointError,
        latest_checkpoint,
        list_checkpoints,
        load_checkpoint,
    )
    from matta_core.training.config import ARMS, DEVICES, TrainConfig
    from matta_core.training.determinism import DeviceError, resolve_device
    from matta_core.training.loop import run_training
    from matta_core.training.optim import make_optimizer, optimizer_names, register_optimizer
    from matta_core.training.order import BatchOrder
    from matta_core.training.result import TrainResult

__all__ = [
    "ARMS",
    "DEVICES",
    "BatchOrder",
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "DeviceError",
    "HistoryCallback",
    "JsonlMetricsCallback",
    "ProgressBar",
    "TrainConfig",
    "TrainResult",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "make_optimizer",
    "optimizer_names",
    "register_optimizer",
    "resolve_device",
    "run_training",
]
