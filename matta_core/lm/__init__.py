"""Language-model (decoder) work: data, losses, training and evaluation."""

from matta_core.lm.config import LM_BATCH_SIZE, LM_LR, LMOptimConfig, default_lm_train_config
from matta_core.lm.data import LMBatch, LMDataError, LMTrainingData
from matta_core.lm.losses import (
    LM_LOSS_CONFIG,
    dense_kd,
    lm_matta_loss,
    lm_supervised_loss,
    next_token_ce,
    sparse_topk_kd,
)
from matta_core.lm.trainer import LMTrainResult, evaluate_next_token, student_decoder_config, train_lm

__all__ = [
    "LM_BATCH_SIZE",
    "LM_LOSS_CONFIG",
    "LM_LR",
    "LMBatch",
    "LMDataError",
    "LMOptimConfig",
    "LMTrainResult",
    "LMTrainingData",
    "default_lm_train_config",
    "dense_kd",
    "evaluate_next_token",
    "lm_matta_loss",
    "lm_supervised_loss",
    "next_token_ce",
    "sparse_topk_kd",
    "student_decoder_config",
    "train_lm",
]
