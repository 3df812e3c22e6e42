"""The training loop every model family shares; the family supplies the model and the loss of one step.

`run_training` owns everything that makes runs comparable and resumable: the device and deterministic kernels,
seeding, the optimizer, the batch order (`BatchOrder`), resuming from the newest checkpoint (refusing a foreign
one), the non-finite loss guard, validation every `eval_every` steps and at the end, the loss log and history,
time/step-based checkpoints, callbacks and the progress bar. A family's trainer builds a `TrainingStep` and calls it.

Resumed runs end with exactly the weights an uninterrupted run ends with (on CPU) because every source of
randomness is saved in the checkpoint or derived from the step. The loop therefore fixes the order of everything
that draws from an RNG or touches the optimizer: model construction after seeding, then per step the batch, the
family's loss (which may draw from `sampler`), `before_update`, `zero_grad(set_to_none=True)`, backward,
`after_backward`, the optimizer step. A family must draw randomness only from torch's global generators (saved)
or `sampler` (saved), never from a generator of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from matta_core.distillation import LossTerms
from matta_core.training.callbacks import Callback, ProgressBar
from matta_core.training.checkpoint_schedule import CheckpointSchedule
from matta_core.training.checkpoint_store import open_checkpoint_store
from matta_core.training.config import TrainConfig
from matta_core.training.determinism import deterministic, resolve_device, rng_state, seed_everything
from matta_core.training.optim import SplitOptimizer, make_model_optimizer
from matta_core.training.order import BatchOrder
from matta_core.training.result import TrainResult
from matta_core.training.resume import resume_run
from matta_core.training.run_state import RunState

ModelT = TypeVar("ModelT", bound=nn.Module)
ResultT = TypeVar("ResultT", bound=TrainResult, covariant=True)


class BatchSource(Protocol):
    """Training rows: `batch(rows)` gathers the rows of one step (something with `.to(device)`)."""

    def __len__(self) -> int: ...

    def batch(self, rows: torch.Tensor) -> Any: ...


class TrainingStep(Protocol[ModelT, ResultT]):
    """What a model family supplies to `run_training`. Subclass it: the optional hooks default to doing nothing.

    Required: `model_config` (the family's config: given to `Callback.on_train_start`, saved in every checkpoint
    as ``model_config`` via `to_dict()` and compared on resume), `build_model`, `loss` and `result`.
    """

    model_config: Any

    def build_model(self) -> ModelT:
        """A freshly initialised model on the CPU (called once, right after seeding; the loop moves it)."""
        ...

    def loss(self, model: ModelT, batch: Any, progress: float, sampler: torch.Generator) -> LossTerms:
        """The arm's loss on one batch (already on the device); `progress` = step / total steps, in [0, 1).
        Sampled widths must be drawn from `sampler`, which checkpoints save and restore."""
        ...

    def result(self, **fields: Any) -> ResultT:
        """The run's result from `TrainResult`'s fields (a family may add its own)."""
        ...

    def before_update(self, optimizer: torch.optim.Optimizer | SplitOptimizer, step: int, total_steps: int) -> None:
        """After the loss, before `zero_grad`: e.g. set the learning rate of 0-based `step` (from the step alone,
        never accumulated, so a resumed run gets the same rate)."""
        return None

    def after_backward(self, model: ModelT) -> dict[str, float]:
        """After backward, before the optimizer step (e.g. clip gradients); returns extra metrics for the step."""
        return {}

    def validate(self, model: ModelT) -> dict[str, float] | None:
        """`val/*` metrics on the validation data, or None when the run has none."""
        return None

    def checkpoint_state(self) -> dict[str, Any]:
        """Extra JSON values saved in every checkpoint's state.json (e.g. a marker of the family's checkpoints)."""
        return {}

    def check_checkpoint(self, ref: Path | str, state: dict[str, Any]) -> None:
        """Refuse (CheckpointError) to resume a checkpoint that `checkpoint_state` did not write; runs before the
        shared checks of configs, rows and length."""
        return None


def run_training(
    step: TrainingStep[ModelT, ResultT],
    data: BatchSource,
    config: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    callbacks: Sequence[Callback] = (),
) -> tuple[ModelT, ResultT]:
    """Train `step`'s model on `data` for `config`; return it (in eval mode) and what happened.

    With `checkpoint_dir` (a path, or a URI such as ``gs://bucket/run/matta``: see `checkpoint_store`),
    checkpoints are written per `config`'s schedule and at the end, and (with `resume=True`) a run continues from
    the newest one found there.
    """
    device = resolve_device(config.device)
    total_steps = config.total_steps(len(data))
    store = None if checkpoint_dir is None else open_checkpoint_store(checkpoint_dir)
    model_config = step.model_config

    with deterministic(device, config.num_threads):
        sampler = seed_everything(config.seed)
        model = step.build_model().to(device)
        optimizer = make_model_optimizer(config.optimizer, model, config.lr, config.weight_decay)
        run = RunState()
        if store is not None:
            run = resume_run(store, resume, model, optimizer, sampler, model_config=model_config.to_dict(),
                             config=config, rows=len(data), total_steps=total_steps,
                             check_state=step.check_checkpoint)
        log, start_step = run.log, run.start_step

        hooks = list(callbacks)
        bar = ProgressBar(total_steps, config.log_every) if config.progress else None
        if bar is not None:
            hooks.insert(0, bar)
        order = BatchOrder(len(data), config.batch_size, config.seed)
        last_checkpoint = store.latest() if store is not None else None
        started = time.perf_counter()
        schedule = CheckpointSchedule(config.checkpoint_every, config.checkpoint_every_seconds, total_steps)
        model.train()
        try:
            for hook in hooks:
                hook.on_train_start(model_config, config, start_step)
            for index in range(start_step, total_steps):
                batch = data.batch(order.rows(index)).to(device)
                terms = step.loss(model, batch, index / total_steps, sampler)
                if not math.isfinite(terms.parts["total"]):
                    # Stop before the optimizer spreads NaN into every weight (and into the next checkpoint).
                    raise FloatingPointError(
                        f"loss is {terms.parts['total']} at step {index + 1} ({terms.parts}); lower lr or check "
                        "the inputs"
                    )
                step.before_update(optimizer, index, total_steps)
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                extra = step.after_backward(model)
                optimizer.step()

                done = index + 1
                metrics = {**terms.parts, "lr": float(optimizer.param_groups[0]["lr"]), **extra}
                log.add(terms.parts)
                evaluated: dict[str, float] = {}
                if (config.eval_every and done % config.eval_every == 0) or done == total_steps:
                    scores = step.validate(model)
                    if scores is not None:
                        evaluated = run.validation = scores
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
                        "loss_log": log.to_dict(), "validation": run.validation, **step.checkpoint_state(),
                    }
                    last_checkpoint = store.save(done, model, optimizer, rng_state(sampler), state)
                    schedule.saved()
                    store.prune(config.keep_checkpoints)
                    for hook in hooks:
                        hook.on_checkpoint(done, last_checkpoint)  # type: ignore[arg-type]  # a URI when remote
        finally:
            if bar is not None:
                bar.close()

    result = step.result(
        arm=config.arm, steps=total_steps, wall_seconds=run.wall_seconds + time.perf_counter() - started,
        final_loss=dict(log.last), mean_loss=log.means(), history=list(log.history), config=config,
        start_step=start_step, validation=dict(run.validation), checkpoint=last_checkpoint,
    )
    for hook in hooks:
        hook.on_train_end(result)
    return model.eval(), result
