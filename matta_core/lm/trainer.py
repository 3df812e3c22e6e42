"""The joint LM trainer: MatTA and its equal-budget baselines on a nested decoder. Entry point: `train_lm`.

The loop is the classifier trainer's (`matta_core.training.trainer`), with its contracts: same arms, data order
(`BatchOrder`), determinism, atomic checkpoints and bit-identical resume on CPU, callbacks and progress bar. What
differs: the model is a `NestedDecoder`, the loss is per token (`lm_matta_loss`), and each step warms up the
learning rate and clips the gradient norm (`LMOptimConfig`), as transformers usually need.

Per MatTA step the batch is embedded ONCE (token + position embeddings are width-independent), then the blocks run
at the TA's widths, the Student's and `sandwich_k` sampled widths (`sample_decoder_widths`). The baselines train a
decoder holding only the Student's widths: `kd` distils from the Teacher's top-k (+ CE), `ce_only` fits the next
tokens. In every arm the returned model's `config.student_widths` are the Student's widths.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from matta_core.lm.config import LMOptimConfig
from matta_core.lm.data import LMBatch, LMDataError, LMTrainingData
from matta_core.lm.losses import lm_matta_loss, lm_supervised_loss, next_token_ce
from matta_core.losses import LossTerms
from matta_core.models.decoder import DecoderConfig, DecoderWidths, NestedDecoder, sample_decoder_widths
from matta_core.training.callbacks import Callback, ProgressBar
from matta_core.training.checkpoint import CheckpointError, load_optimizer_state
from matta_core.training.checkpoint_schedule import CheckpointSchedule
from matta_core.training.checkpoint_store import CheckpointStore, open_checkpoint_store
from matta_core.training.config import TrainConfig
from matta_core.training.data import BatchOrder
from matta_core.training.determinism import deterministic, resolve_device, restore_rng_state, rng_state, seed_everything
from matta_core.training.optim import SplitOptimizer, make_model_optimizer

# The classifier trainer's run bookkeeping, shared so both trainers log, checkpoint and refuse foreign checkpoints
# the same way.
from matta_core.training.trainer import (
    TrainResult,
    _as_json,
    _check_resumable,
    _diff,
    _latest_to_resume,
    _resumed_state,
    _RunState,
    _sample_low,
)

# Marks LM checkpoints, so a classifier checkpoint directory is refused with a clear message.
CHECKPOINT_KIND = "lm"


@dataclass
class LMTrainResult(TrainResult):
    """`TrainResult` plus the warm-up / clipping settings the run used."""

    optim: LMOptimConfig = field(default_factory=LMOptimConfig)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "optim": self.optim.to_dict()}


def train_lm(
    decoder_config: DecoderConfig,
    data: LMTrainingData,
    config: TrainConfig,
    *,
    optim: LMOptimConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    callbacks: Sequence[Callback] = (),
    validation: LMTrainingData | None = None,
) -> tuple[NestedDecoder, LMTrainResult]:
    """Train `config.arm` on `data`; return the trained decoder (in eval mode) and what happened.

    For `matta` the model is the nested TA of `decoder_config`; for the baselines a decoder with only the
    Student's widths (`student_decoder_config`). Use `default_lm_train_config` for LM defaults (lr, batch, tau = 1).
    With `checkpoint_dir`, checkpoints are written every `config.checkpoint_every` steps and at the end, and (with
    `resume=True`) a run continues from the newest one found there. `validation` is scored (`evaluate_next_token`)
    every `config.eval_every` steps and at the end. `config.sample_low`, if set, bounds the sampled widths per
    slot of `decoder_config.width_slots()` (ffn then heads of each block), or one int for every slot.
    """
    optim = optim or LMOptimConfig()
    data.check_compatible(decoder_config)
    if validation is not None:
        validation.check_compatible(decoder_config, what="validation data")
    if config.arm == "kd" and not data.has_teacher:
        raise LMDataError(
            "arm 'kd' distils from the Teacher, but the training data has no top-k logits (use 'ce_only')"
        )
    device = resolve_device(config.device)
    total_steps = config.total_steps(len(data))
    net_config = decoder_config if config.arm == "matta" else student_decoder_config(decoder_config)
    low = decoder_config.from_flat(_sample_low(config, decoder_config.width_slots()))
    store = None if checkpoint_dir is None else open_checkpoint_store(checkpoint_dir)

    with deterministic(device, config.num_threads):
        sampler = seed_everything(config.seed)
        model = NestedDecoder(net_config).to(device)
        optimizer = make_model_optimizer(config.optimizer, model, config.lr, config.weight_decay)
        run = _RunState()
        if store is not None:
            run = _resume(store, resume, model, optimizer, sampler, decoder_config, config, optim,
                          len(data), total_steps)
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
                # Callbacks are typed for the classifier's config; they only pass it through or read nothing.
                hook.on_train_start(decoder_config, config, start_step)  # type: ignore[arg-type]
            for step in range(start_step, total_steps):
                batch = data.batch(order.rows(step)).to(device)
                terms = _arm_loss(config, model, batch, step / total_steps, sampler, low)
                if not math.isfinite(terms.parts["total"]):
                    # Stop before the optimizer spreads NaN into every weight (and into the next checkpoint).
                    raise FloatingPointError(
                        f"loss is {terms.parts['total']} at step {step + 1} ({terms.parts}); lower lr or check "
                        "the inputs"
                    )
                # Set from the step alone (never accumulated), so a resumed run gets the same rate at every step.
                lr = config.lr * optim.lr_scale(step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                grad_norm = nn.utils.clip_grad_norm_(model.parameters(), optim.clip_norm or math.inf)
                optimizer.step()

                done = step + 1
                metrics = {**terms.parts, "lr": lr, "grad_norm": float(grad_norm)}
                log.add(terms.parts)
                evaluated: dict[str, float] = {}
                if validation is not None and ((config.eval_every and done % config.eval_every == 0)
                                               or done == total_steps):
                    evaluated = run.validation = evaluate_next_token(model, validation, eval_widths,
                                                                     config.batch_size)
                    metrics.update(evaluated)
                if done % config.log_every == 0 or done == total_steps or evaluated:
                    log.record(done, evaluated)
                for hook in hooks:
                    hook.on_step_end(done, metrics)

                if store is not None and schedule.due(done):
                    state = {
                        "kind": CHECKPOINT_KIND, "arm": config.arm, "total_steps": total_steps,
                        "data_rows": len(data), "model_config": decoder_config.to_dict(),
                        "train_config": config.to_dict(), "lm_optim": optim.to_dict(),
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

    result = LMTrainResult(
        arm=config.arm, steps=total_steps, wall_seconds=run.wall_seconds + time.perf_counter() - started,
        final_loss=dict(log.last), mean_loss=log.means(), history=list(log.history), config=config,
        start_step=start_step, validation=dict(run.validation), checkpoint=last_checkpoint, optim=optim,
    )
    for hook in hooks:
        hook.on_train_end(result)
    return model.eval(), result


def student_decoder_config(config: DecoderConfig) -> DecoderConfig:
    """The baselines' decoder: only the Student's widths (its TA is the Student when the Student's head count is
    the same in every block; otherwise blocks with fewer heads keep a few unused, untrained head weights)."""
    student = config.student_widths
    ffn = tuple(w.ffn for w in student)
    heads = tuple(w.heads for w in student)
    return replace(
        config, n_heads=max(heads), head_dim=config.resolved_head_dim, ffn_widths=ffn, student_ffn_widths=ffn,
        student_heads=heads,
    )


@torch.no_grad()
def evaluate_next_token(
    model: NestedDecoder, data: LMTrainingData, widths: Mapping[str, DecoderWidths], batch_size: int = 16
) -> dict[str, float]:
    """Token-weighted mean next-token NLL (nats) and perplexity of `model` at each named width on `data`, as
    `val/<name>_nll` and `val/<name>_perplexity`. The embedding is computed once per batch and shared by all widths.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = dict.fromkeys(widths, 0.0)
    for start in range(0, len(data), batch_size):
        batch = data.batch(torch.arange(start, min(len(data), start + batch_size))).to(device)
        hidden = model.embed(batch.input_ids)
        for name, w in widths.items():
            mean = next_token_ce(model.head_forward(hidden, w), batch.targets, batch.mask)
            totals[name] += float(mean) * batch.num_tokens
    model.train(was_training)
    out: dict[str, float] = {}
    for name, total in totals.items():
        nll = total / max(1, data.num_tokens)
        out[f"val/{name}_nll"] = nll
        out[f"val/{name}_perplexity"] = math.exp(nll)
    return out


def _arm_loss(
    config: TrainConfig,
    model: NestedDecoder,
    batch: LMBatch,
    progress: float,
    sampler: torch.Generator,
    low: DecoderWidths,
) -> LossTerms:
    """The arm's loss on one batch; `progress` in [0, 1) drives the online-distillation ramp."""
    net = model.config
    hidden = model.embed(batch.input_ids)
    if config.arm == "matta":
        ta_logits = model.head_forward(hidden, net.ta_widths)
        student_logits = model.head_forward(hidden, net.student_widths)
        sampled = [
            model.head_forward(hidden, sample_decoder_widths(net, sampler, low)) for _ in range(config.sandwich_k)
        ]
        return lm_matta_loss(ta_logits, student_logits, batch, config.loss, progress, sampled)
    logits = model.head_forward(hidden, net.student_widths)
    if config.arm == "kd":
        loss, nll = lm_supervised_loss(logits, batch, config.loss)
    else:
        loss = nll = next_token_ce(logits, batch.targets, batch.mask)
    # Named like the MatTA arm's Student terms, so runs of different arms compare on the same metrics.
    value = float(loss.detach())
    return LossTerms(loss, {"student_supervised": value, "student_nll": float(nll.detach()), "total": value})


def _eval_widths(config: DecoderConfig, arm: str) -> dict[str, DecoderWidths]:
    if arm == "matta":
        return {"ta": config.ta_widths, "student": config.student_widths}
    return {"student": config.student_widths}


def _resume(
    store: CheckpointStore,
    resume: bool,
    model: NestedDecoder,
    optimizer: torch.optim.Optimizer | SplitOptimizer,
    sampler: torch.Generator,
    decoder_config: DecoderConfig,
    config: TrainConfig,
    optim: LMOptimConfig,
    rows: int,
    total_steps: int,
) -> _RunState:
    """Load the newest checkpoint in `store` into the model, optimizer and generators (if there is one)."""
    latest = _latest_to_resume(store, resume)
    if latest is None:
        return _RunState()
    ckpt = store.load(latest)
    if ckpt.state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"cannot resume from {latest}: it is not an LM training checkpoint (a classifier "
                              "run's?); give an LM run's checkpoint directory or an empty one")
    diffs = _diff(ckpt.state["lm_optim"], _as_json(optim.to_dict()), "lm_optim")
    if diffs:
        raise CheckpointError(f"cannot resume from {latest}: it belongs to a different run ({'; '.join(diffs)})")
    _check_resumable(ckpt.path, ckpt.state, decoder_config, config, rows, total_steps)  # type: ignore[arg-type]
    model.load_state_dict(ckpt.model_state, strict=True)
    load_optimizer_state(optimizer, ckpt.optimizer_tensors, ckpt.optimizer_json)
    restore_rng_state(ckpt.rng, sampler)
    return _resumed_state(ckpt, config.arm, total_steps)
