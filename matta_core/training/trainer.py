"""The joint trainer: one loop for MatTA and its equal-budget baselines. Entry point: `train`.

Per step, MatTA embeds the batch ONCE (the embedding bag is width-independent and is most of the cost), then runs
the cheap nested MLP at the TA's widths, the Student's, and `sandwich_k` random widths, and minimises
`matta_loss`. The baselines run the same loop (same steps, batch size, data order, optimizer) on a model that has
only the Student's parameters: `kd` distils from the Teacher, `ce_only` fits the labels.

A run with a checkpoint directory is resumable: killed at any point and started again with the same arguments, it
continues from its newest checkpoint and ends with exactly the weights an uninterrupted run ends with (on CPU),
because every source of randomness is saved or derived from the step (see determinism.py and data.BatchOrder).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from matta_core.features.hashing import inverse_document_frequency
from matta_core.losses import LossConfig, LossTerms, matta_loss, supervised_loss
from matta_core.models.classifier_config import ClassifierConfig
from matta_core.models.nested_classifier import NestedClassifier
from matta_core.nested.widths import Widths, WidthSlot, sample_widths
from matta_core.training.callbacks import Callback, ProgressBar
from matta_core.training.checkpoint import Checkpoint, CheckpointError, load_optimizer_state
from matta_core.training.checkpoint_schedule import CheckpointSchedule
from matta_core.training.checkpoint_store import CheckpointStore, open_checkpoint_store
from matta_core.training.config import RESUMABLE_CHANGES, TrainConfig
from matta_core.training.data import BatchOrder, TrainingBatch, TrainingData, TrainingDataError
from matta_core.training.determinism import deterministic, resolve_device, restore_rng_state, rng_state, seed_everything
from matta_core.training.optim import SplitOptimizer, make_model_optimizer


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
        return {
            "arm": self.arm, "steps": self.steps, "wall_seconds": self.wall_seconds,
            "final_loss": self.final_loss, "mean_loss": self.mean_loss, "history": self.history,
            "config": self.config.to_dict(), "start_step": self.start_step, "validation": self.validation,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
        }


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
) -> tuple[NestedClassifier, TrainResult]:
    """Train `config.arm` on `data`; return the trained model (in eval mode) and what happened.

    For `matta` the model is the nested TA of `model_config`; for the baselines it is built from
    `model_config.sub_config(student_widths)`, so its TA is the Student. `idf` defaults to the IDF of the training
    features. With `checkpoint_dir` (a path, or a URI such as ``gs://bucket/run/matta``: see `checkpoint_store`),
    checkpoints are written every `config.checkpoint_every` steps and at the end, and (with `resume=True`) a run
    continues from the newest one found there.
    """
    data.check_compatible(model_config)
    if validation is not None:
        validation.check_compatible(model_config, what="validation data")
    _check_arm_data(config.arm, data)
    device = resolve_device(config.device)
    total_steps = config.total_steps(len(data))
    net_config = model_config if config.arm == "matta" else model_config.sub_config(model_config.student_widths)
    low = _sample_low(config, model_config.width_slots())
    store = None if checkpoint_dir is None else open_checkpoint_store(checkpoint_dir)

    with deterministic(device, config.num_threads):
        sampler = seed_everything(config.seed)
        model = NestedClassifier(net_config)
        if idf is None:
            idf = inverse_document_frequency(data.features, net_config.features.num_buckets)
        model.set_idf(torch.as_tensor(idf))
        model.to(device)
        optimizer = make_model_optimizer(config.optimizer, model, config.lr, config.weight_decay)
        run = _RunState()
        if store is not None:
            run = _resume(store, resume, model, optimizer, sampler, model_config, config, len(data), total_steps)
        log, start_step = run.log, run.start_step

        hooks = list(callbacks)
        bar = ProgressBar(total_steps, config.log_every) if config.progress else None
        if bar is not None:
            hooks.insert(0, bar)
        eval_widths = _eval_widths(net_config, config.arm)
        order = BatchOrder(len(data), config.batch_size, config.seed)
        last_checkpoint = store.latest() if store is not None else None
        started = time.perf_counter()
        schedule = CheckpointSchedule(config.checkpoint_every, config.checkpoint_every_seconds, total_steps)
        model.train()
        try:
            for hook in hooks:
                hook.on_train_start(model_config, config, start_step)
            for step in range(start_step, total_steps):
                batch = data.batch(order.rows(step)).to(device)
                terms = _arm_loss(config, model, batch, step / total_steps, sampler, low)
                if not math.isfinite(terms.parts["total"]):
                    # Stop before the optimizer spreads NaN into every weight (and into the next checkpoint).
                    raise FloatingPointError(
                        f"loss is {terms.parts['total']} at step {step + 1} ({terms.parts}); lower lr or check "
                        "the inputs"
                    )
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                optimizer.step()

                done = step + 1
                metrics = {**terms.parts, "lr": float(optimizer.param_groups[0]["lr"])}
                log.add(terms.parts)
                evaluated: dict[str, float] = {}
                if validation is not None and ((config.eval_every and done % config.eval_every == 0)
                                               or done == total_steps):
                    evaluated = run.validation = evaluate(model, validation, eval_widths)
                    metrics.update(evaluated)
                if done % config.log_every == 0 or done == total_steps or evaluated:
                    log.record(done, evaluated)
                for hook in hooks:
                    hook.on_step_end(done, metrics)

                if store is not None and schedule.due(done):
                    state = {
                        "arm": config.arm, "total_steps": total_steps, "data_rows": len(data),
                        "model_config": model_config.to_dict(), "train_config": config.to_dict(),
                        "wall_seconds": run.wall_seconds + time.perf_counter() - started,
                        "loss_log": log.to_dict(), "validation": run.validation,
                    }
                    last_checkpoint = store.save(done, model, optimizer, rng_state(sampler), state)
                    schedule.saved()
                    store.prune(config.keep_checkpoints)
                    for hook in hooks:
                        hook.on_checkpoint(done, last_checkpoint)  # type: ignore[arg-type]  # a URI when remote
        finally:
            if bar is not None:
                bar.close()

    result = TrainResult(
        arm=config.arm, steps=total_steps, wall_seconds=run.wall_seconds + time.perf_counter() - started,
        final_loss=dict(log.last), mean_loss=log.means(), history=list(log.history), config=config,
        start_step=start_step, validation=dict(run.validation), checkpoint=last_checkpoint,
    )
    for hook in hooks:
        hook.on_train_end(result)
    return model.eval(), result


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


def _arm_loss(
    config: TrainConfig,
    model: NestedClassifier,
    batch: TrainingBatch,
    progress: float,
    sampler: torch.Generator,
    low: Widths,
) -> LossTerms:
    """The arm's loss on one batch; `progress` in [0, 1) drives the online-distillation ramp."""
    if config.arm == "matta":
        return _matta_loss(model, batch, config.loss, progress, sampler, low, config.sandwich_k)
    logits = model(batch.features)
    if config.arm == "kd":
        loss = supervised_loss(logits, batch.teacher_logits, batch.labels, config.loss)
    else:
        assert batch.labels is not None  # _check_arm_data refused ce_only without labels
        loss = F.cross_entropy(logits, batch.labels)
    # Named like the MatTA arm's Student term, so runs of different arms compare on the same metric.
    value = float(loss.detach())
    return LossTerms(loss, {"student_supervised": value, "total": value})


def _matta_loss(
    model: NestedClassifier,
    batch: TrainingBatch,
    loss_config: LossConfig,
    progress: float,
    sampler: torch.Generator,
    low: Widths,
    sandwich_k: int,
) -> LossTerms:
    config = model.config
    hidden = model.embed(batch.features)
    ta_logits = model.head_forward(hidden, config.ta_widths)
    student_logits = model.head_forward(hidden, config.student_widths)
    slots = config.width_slots()
    sampled = [model.head_forward(hidden, sample_widths(slots, sampler, low)) for _ in range(sandwich_k)]
    return matta_loss(ta_logits, student_logits, batch.teacher_logits, batch.labels, loss_config, progress, sampled)


def _check_arm_data(arm: str, data: TrainingData) -> None:
    if arm == "ce_only" and data.labels is None:
        raise TrainingDataError("arm 'ce_only' trains on labels, but the training data has none")
    if arm == "kd" and data.teacher_logits is None:
        raise TrainingDataError(
            "arm 'kd' distils from the Teacher, but the training data has no Teacher logits (use 'ce_only')"
        )


def _sample_low(config: TrainConfig, slots: list[WidthSlot]) -> Widths:
    """Per-layer lower bounds of the sandwich sampler (default: each layer's min_width, below the Student)."""
    if config.sample_low is None:
        return tuple(slot.min_width for slot in slots)
    low = (config.sample_low,) * len(slots) if isinstance(config.sample_low, int) else tuple(config.sample_low)
    if len(low) != len(slots):
        raise ValueError(f"sample_low {list(low)} has {len(low)} entries; the model has {len(slots)} layers "
                         f"{[s.name for s in slots]}")
    for slot, lo in zip(slots, low, strict=True):
        if not slot.min_width <= lo <= slot.max_width:
            raise ValueError(f"sample_low for layer {slot.name} is {lo}; allowed {slot.min_width}..{slot.max_width}")
    return low


def _eval_widths(config: ClassifierConfig, arm: str) -> dict[str, Widths]:
    if arm == "matta":
        return {"ta": config.ta_widths, "student": config.student_widths}
    return {"student": config.ta_widths}


@dataclass
class _RunState:
    """Where a run stands: what a checkpoint restores besides the model, optimizer and RNG states."""

    log: _LossLog = field(default_factory=lambda: _LossLog())
    start_step: int = 0
    wall_seconds: float = 0.0
    validation: dict[str, float] = field(default_factory=dict)


def _resume(
    store: CheckpointStore,
    resume: bool,
    model: NestedClassifier,
    optimizer: torch.optim.Optimizer | SplitOptimizer,
    sampler: torch.Generator,
    model_config: ClassifierConfig,
    config: TrainConfig,
    rows: int,
    total_steps: int,
) -> _RunState:
    """Load the newest checkpoint in `store` into the model, optimizer and generators (if there is one)."""
    latest = _latest_to_resume(store, resume)
    if latest is None:
        return _RunState()
    ckpt = store.load(latest)
    _check_resumable(ckpt.path, ckpt.state, model_config, config, rows, total_steps)
    model.load_state_dict(ckpt.model_state, strict=True)
    load_optimizer_state(optimizer, ckpt.optimizer_tensors, ckpt.optimizer_json)
    restore_rng_state(ckpt.rng, sampler)
    return _resumed_state(ckpt, config.arm, total_steps)


def _latest_to_resume(store: CheckpointStore, resume: bool) -> Path | str | None:
    """The newest checkpoint in `store` (after clearing a killed writer's litter); refused when `resume` is off."""
    store.prepare()
    latest = store.latest()
    if latest is not None and not resume:
        raise CheckpointError(
            f"{store.location} already holds checkpoints (newest {latest}) and resume=False: resume, or give an "
            "empty checkpoint directory"
        )
    return latest


def _resumed_state(ckpt: Checkpoint, arm: str, total_steps: int) -> _RunState:
    """The run bookkeeping a checkpoint restores; says (on stdout, i.e. in the task's log) where the run resumed."""
    print(f"resuming arm {arm} from checkpoint {ckpt.path} (step {ckpt.step} of {total_steps})", flush=True)
    return _RunState(
        log=_LossLog.from_dict(ckpt.state["loss_log"]), start_step=ckpt.step,
        wall_seconds=float(ckpt.state["wall_seconds"]), validation=dict(ckpt.state.get("validation", {})),
    )


def _check_resumable(
    path: Path | str, state: dict[str, Any], model_config: ClassifierConfig, config: TrainConfig, rows: int, total: int
) -> None:
    """Refuse to continue a checkpoint written by a different run, naming every field that differs."""
    diffs = _diff(state["model_config"], _as_json(model_config.to_dict()), "model_config")
    saved_train = {k: v for k, v in state["train_config"].items() if k not in RESUMABLE_CHANGES}
    now_train = {k: v for k, v in _as_json(config.to_dict()).items() if k not in RESUMABLE_CHANGES}
    diffs += _diff(saved_train, now_train, "train_config")
    if state["data_rows"] != rows:
        diffs.append(f"training rows: checkpoint {state['data_rows']}, now {rows}")
    if not diffs and state["total_steps"] != total:
        diffs.append(f"total steps: checkpoint {state['total_steps']}, now {total}")
    if diffs:
        raise CheckpointError(
            f"cannot resume from {path}: it belongs to a different run ({'; '.join(diffs)}). Use the original "
            "settings, or a new checkpoint directory"
        )


def _diff(saved: Any, now: Any, where: str) -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(saved) | set(now)):
            out += _diff(saved.get(key, "<absent>"), now.get(key, "<absent>"), f"{where}.{key}")
        return out
    return [] if saved == now else [f"{where}: checkpoint {saved!r}, now {now!r}"]


def _as_json(value: Any) -> Any:
    # What a value looks like after a trip through state.json (tuples become lists), for a like-for-like compare.
    return json.loads(json.dumps(value))


class _LossLog:
    """Loss bookkeeping that survives a resume: running sums (for means), the open history window, the history."""

    def __init__(self) -> None:
        self.count = 0
        self.sums: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.window_count = 0
        self.window_sums: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    def add(self, parts: dict[str, float]) -> None:
        self.count += 1
        self.window_count += 1
        self.last = dict(parts)
        for name, value in parts.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.window_sums[name] = self.window_sums.get(name, 0.0) + value

    def record(self, step: int, extra: dict[str, float]) -> None:
        means = {name: total / self.window_count for name, total in self.window_sums.items()}
        self.history.append({"step": step, **means, **extra})
        self.window_count, self.window_sums = 0, {}

    def means(self) -> dict[str, float]:
        return {name: total / self.count for name, total in self.sums.items()} if self.count else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count, "sums": self.sums, "last": self.last, "window_count": self.window_count,
            "window_sums": self.window_sums, "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _LossLog:
        log = cls()
        log.count, log.sums, log.last = int(data["count"]), dict(data["sums"]), dict(data["last"])
        log.window_count, log.window_sums = int(data["window_count"]), dict(data["window_sums"])
        log.history = [dict(record) for record in data["history"]]
        return log
