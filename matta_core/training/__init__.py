"""Training: the joint MatTA trainer and its equal-budget baselines, with resumable, pickle-free checkpoints.

Entry point: `train(model_config, data, config) -> (model, TrainResult)`.

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
    "BatchOrder": "matta_core.training.data",
    "TrainingBatch": "matta_core.training.data",
    "TrainingData": "matta_core.training.data",
    "TrainingDataError": "matta_core.training.data",
    "DeviceError": "matta_core.training.determinism",
    "resolve_device": "matta_core.training.determinism",
    "make_optimizer": "matta_core.training.optim",
    "optimizer_names": "matta_core.training.optim",
    "register_optimizer": "matta_core.training.optim",
    "TrainResult": "matta_core.training.trainer",
    "evaluate": "matta_core.training.trainer",
    "train": "matta_core.training.trainer",
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
    from matta_core.training.data import BatchOrder, TrainingBatch, TrainingData, TrainingDataError
    from matta_core.training.determinism import DeviceError, resolve_device
    from matta_core.training.optim import make_optimizer, optimizer_names, register_optimizer
    from matta_core.training.trainer import TrainResult, evaluate, train

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
    "TrainingBatch",
    "TrainingData",
    "TrainingDataError",
    "evaluate",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "make_optimizer",
    "optimizer_names",
    "register_optimizer",
    "resolve_device",
    "train",
]
