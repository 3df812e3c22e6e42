"""The joint trainer: one loop for MatTA and its equal-budget baselines. Entry point: `train`.

Per step, MatTA embeds the batch ONCE (the embedding bag is width-independent and is most of the cost), then runs
the cheap nested MLP at the TA's widths, the Student's, and `sandwich_k` random widths (or, with
`TrainConfig.loss_widths`, each of the widths listed there), and minimises `matta_loss`. The baselines run the
same loop (same steps, batch size, data order, optimizer) on a model that has only the Student's parameters:
`kd` distils from the Teacher, `ce_only` fits the labels.

The loop itself (seeding, checkpoints, resume, callbacks, validation timing) is the shared
`matta_core.training.loop.run_training`; this module supplies the classifier's model and per-step loss
(`ClassifierStep`). A run with a checkpoint directory is resumable: killed at any point and started again with the
same arguments, it continues from its newest checkpoint and ends with exactly the weights an uninterrupted run ends
with (on CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from matta_core.distillation import LossTerms
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.data import TrainingBatch, TrainingData, TrainingDataError
from matta_core.families.classifier.loss import matta_loss, supervised_loss
from matta_core.families.classifier.model import NestedClassifier
from matta_core.families.classifier.warm_start import WarmStart
from matta_core.features.hashing import inverse_document_frequency
from matta_core.nested.widths import WidthError, Widths, sample_widths, validate_widths
from matta_core.training.callbacks import Callback
from matta_core.training.config import TrainConfig
from matta_core.training.loop import TrainingStep, run_training
from matta_core.training.result import TrainResult
from matta_core.training.sample_low import sample_low_bounds

# TrainResult is re-exported: callers import the trainer's result type from here.
__all__ = ["ClassifierStep", "TrainResult", "evaluate", "train"]


def train(
    model_config: ClassifierConfig,
    data: TrainingData,
    config: TrainConfig,
    *,
    idf: np.ndarray | torch.Tensor | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    callbacks: Sequence[Callback] = (),
    validation: TrainingData | None = None,
    warm_start: WarmStart | None = None,
) -> tuple[NestedClassifier, TrainResult]:
    """Train `config.arm` on `data`; return the trained model (in eval mode) and what happened.

    For `matta` the model is the nested TA of `model_config`; for the baselines it is built from
    `model_config.sub_config(student_widths)`, so its TA is the Student. `idf` defaults to the IDF of the training
    features. With `checkpoint_dir` (a path, or a URI such as ``gs://bucket/run/matta``: see `checkpoint_store`),
    checkpoints are written every `config.checkpoint_every` steps and at the end, and (with `resume=True`) a run
    continues from the newest one found there. `warm_start` (``matta`` only) gives the nested model's prefix slice
    its starting weights (`ClassifierStep.build_model`).
    """
    data.check_compatible(model_config)
    if validation is not None:
        validation.check_compatible(model_config, what="validation data")
    _check_arm_data(config.arm, data)
    step = ClassifierStep(model_config, config, data, idf=idf, validation=validation, warm_start=warm_start)
    return run_training(step, data, config, checkpoint_dir=checkpoint_dir, resume=resume, callbacks=callbacks)


class ClassifierStep(TrainingStep[NestedClassifier, TrainResult]):
    """The classifier's part of a training run: its model, the arm's loss on one batch, its validation."""

    def __init__(
        self,
        model_config: ClassifierConfig,
        config: TrainConfig,
        data: TrainingData,
        *,
        idf: np.ndarray | torch.Tensor | None = None,
        validation: TrainingData | None = None,
        warm_start: WarmStart | None = None,
    ) -> None:
        if warm_start is not None and config.arm != "matta":
            raise ValueError(f"a warm start (model.init_from) starts the nested model of arm 'matta'; arm "
                             f"{config.arm!r} is an equal-budget baseline and starts from random weights")
        self.model_config = model_config
        self.config = config
        self.data = data
        self.idf = idf
        self.validation = validation
        self.warm_start = warm_start
        student = model_config.student_widths
        self.net_config = model_config if config.arm == "matta" else model_config.sub_config(student)
        self.low = sample_low_bounds(config, model_config.width_slots())
        self.eval_widths = _eval_widths(self.net_config, config.arm)
        self.fixed_widths = _fixed_widths(self.net_config, config)

    def build_model(self) -> NestedClassifier:
        """The arm's model as training starts: randomly initialised (the global generators, seeded by the loop),
        then, with a warm start, its prefix slice overwritten by the saved model's weights; the IDF is the training
        data's either way. What the train step trains from, and what a test can inspect."""
        model = NestedClassifier(self.net_config)
        if self.warm_start is not None:
            self.warm_start.apply(model)  # after the random draws: they are the same with or without a warm start
        idf = self.idf
        if idf is None:
            idf = inverse_document_frequency(self.data.features, self.net_config.features.num_buckets)
        model.set_idf(torch.as_tensor(idf))
        return model

    def loss(
        self, model: NestedClassifier, batch: TrainingBatch, progress: float, sampler: torch.Generator
    ) -> LossTerms:
        """The arm's loss on one batch; `progress` in [0, 1) drives the online-distillation ramp."""
        config = self.config
        if config.arm == "matta":
            return _matta_loss(model, batch, config, progress, sampler, self.low, self.fixed_widths)
        logits = model(batch.features)
        if config.arm == "kd":
            loss = supervised_loss(logits, batch.teacher_logits, batch.labels, config.loss)
        else:
            assert batch.labels is not None  # _check_arm_data refused ce_only without labels
            loss = F.cross_entropy(logits, batch.labels)
        # Named like the MatTA arm's Student term, so runs of different arms compare on the same metric.
        value = float(loss.detach())
        return LossTerms(loss, {"student_supervised": value, "total": value})

    def result(self, **fields: Any) -> TrainResult:
        return TrainResult(**fields)

    def validate(self, model: NestedClassifier) -> dict[str, float] | None:
        return None if self.validation is None else evaluate(model, self.validation, self.eval_widths)


@torch.no_grad()
def evaluate(
    model: NestedClassifier, data: TrainingData, widths: dict[str, Widths], batch_size: int = 1024
) -> dict[str, float]:
    """Accuracy of `model` at each named width on `data` as `val/<name>_accuracy`.

    Without labels, agreement with the Teacher's top class is reported instead, as `val/<name>_teacher_agreement`.
    The embedding is computed once per batch and shared by all widths, as in training.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if data.labels is not None:
        target, key = data.labels, "accuracy"
    else:
        assert data.teacher_logits is not None
        target, key = data.teacher_logits.argmax(dim=1), "teacher_agreement"
    correct = dict.fromkeys(widths, 0)
    for start in range(0, len(data), batch_size):
        rows = torch.arange(start, min(len(data), start + batch_size))
        hidden = model.embed(data.features.batch(rows).to(device))
        for name, w in widths.items():
            predicted = model.head_forward(hidden, w).argmax(dim=1).cpu()
            correct[name] += int((predicted == target[rows]).sum())
    model.train(was_training)
    return {f"val/{name}_{key}": count / len(data) for name, count in correct.items()}


def _matta_loss(
    model: NestedClassifier,
    batch: TrainingBatch,
    config: TrainConfig,
    progress: float,
    sampler: torch.Generator,
    low: Widths,
    fixed_widths: list[Widths] | None = None,
) -> LossTerms:
    net = model.config
    hidden = model.embed(batch.features)
    ta_logits = model.head_forward(hidden, net.ta_widths)
    student_logits = model.head_forward(hidden, net.student_widths)
    if fixed_widths is not None:
        sampled = [model.head_forward(hidden, w) for w in fixed_widths]
    else:
        slots = net.width_slots()
        sampled = [model.head_forward(hidden, sample_widths(slots, sampler, low)) for _ in range(config.sandwich_k)]
    return matta_loss(ta_logits, student_logits, batch.teacher_logits, batch.labels, config.loss, progress, sampled)


def _check_arm_data(arm: str, data: TrainingData) -> None:
    if arm == "ce_only" and data.labels is None:
        raise TrainingDataError("arm 'ce_only' trains on labels, but the training data has none")
    if arm == "kd" and data.teacher_logits is None:
        raise TrainingDataError(
            "arm 'kd' distils from the Teacher, but the training data has no Teacher logits (use 'ce_only')"
        )


def _fixed_widths(config: ClassifierConfig, train: TrainConfig) -> list[Widths] | None:
    """The widths `loss_widths` trains every step besides the TA and the Student (which have their own terms), or
    None to sample. A width that does not fit the model is refused naming the field; the baselines have one width
    and ignore the setting."""
    if train.loss_widths is None or train.arm != "matta":
        return None
    fixed: list[Widths] = []
    for widths in train.loss_widths:
        if len(widths) == 1 and len(config.hidden_widths) > 1:
            widths = widths * len(config.hidden_widths)  # one number: the same width in every layer
        try:
            checked = validate_widths(config.width_slots(), widths)
        except WidthError as error:
            raise ValueError(f"train.loss_widths: {list(widths)} does not fit the model: {error}") from None
        if checked not in (config.ta_widths, config.student_widths) and checked not in fixed:
            fixed.append(checked)
    return fixed


def _eval_widths(config: ClassifierConfig, arm: str) -> dict[str, Widths]:
    if arm == "matta":
        return {"ta": config.ta_widths, "student": config.student_widths}
    return {"student": config.ta_widths}
