"""Training: the joint MatTA trainer and its equal-budget baselines, with resumable, pickle-free checkpoints.

Entry point: `train(model_config, data, config) -> (model, TrainResult)`.
"""

from matta_core.training import shampoo  # noqa: F401  (registers optimizer="shampoo")
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
