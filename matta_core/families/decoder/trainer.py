"""The joint LM trainer: MatTA and its equal-budget baselines on a nested decoder. Entry point: `train_lm`.

The loop is the shared `matta_core.training.loop.run_training`, with its contracts: same arms, data order
(`BatchOrder`), determinism, atomic checkpoints and bit-identical resume on CPU, callbacks and progress bar. What
this module supplies (`DecoderStep`): the model is a `NestedDecoder`, the loss is per token (`lm_matta_loss`), and
each step warms up the learning rate and clips the gradient norm (`LMOptimConfig`), as transformers usually need.

Per MatTA step the batch is embedded ONCE (token + position embeddings are width-independent), then the blocks run
at the TA's widths, the Student's and `sandwich_k` sampled widths (`sample_decoder_widths`). The baselines train a
decoder holding only the Student's widths: `kd` distils from the Teacher's top-k (+ CE), `ce_only` fits the next
tokens. In every arm the returned model's `config.student_widths` are the Student's widths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from matta_core.distillation import LossTerms
from matta_core.families.decoder.config import DecoderConfig, DecoderWidths
from matta_core.families.decoder.data import LMBatch, LMDataError, LMTrainingData
from matta_core.families.decoder.loss import lm_matta_loss, lm_supervised_loss, next_token_ce
from matta_core.families.decoder.model import NestedDecoder
from matta_core.families.decoder.train_config import LMOptimConfig
from matta_core.families.decoder.widths import sample_decoder_widths
from matta_core.training.callbacks import Callback
from matta_core.training.checkpoint import CheckpointError
from matta_core.training.config import TrainConfig
from matta_core.training.loop import TrainingStep, run_training
from matta_core.training.optim import SplitOptimizer
from matta_core.training.result import TrainResult
from matta_core.training.resume import as_json, config_diff
from matta_core.training.sample_low import sample_low_bounds

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
    step = DecoderStep(decoder_config, config, optim, validation=validation)
    return run_training(step, data, config, checkpoint_dir=checkpoint_dir, resume=resume, callbacks=callbacks)


class DecoderStep(TrainingStep[NestedDecoder, LMTrainResult]):
    """The decoder's part of a training run: its model, the arm's per-token loss, lr warm-up, gradient clipping,
    validation, and the checkpoint marker and settings that a resumed run must share."""

    def __init__(
        self,
        decoder_config: DecoderConfig,
        config: TrainConfig,
        optim: LMOptimConfig,
        *,
        validation: LMTrainingData | None = None,
    ) -> None:
        if config.loss_widths is not None:
            raise ValueError("train.loss_widths (every width's loss each step) is built for the classifier family "
                             "only; a causal_lm run samples its widths (train.sandwich_k): remove loss_widths")
        self.model_config = decoder_config
        self.config = config
        self.optim = optim
        self.validation = validation
        self.net_config = decoder_config if config.arm == "matta" else student_decoder_config(decoder_config)
        self.low = decoder_config.from_flat(sample_low_bounds(config, decoder_config.width_slots()))
        self.eval_widths = _eval_widths(self.net_config, config.arm)

    def build_model(self) -> NestedDecoder:
        return NestedDecoder(self.net_config)

    def loss(self, model: NestedDecoder, batch: LMBatch, progress: float, sampler: torch.Generator) -> LossTerms:
        """The arm's loss on one batch; `progress` in [0, 1) drives the online-distillation ramp."""
        config, net = self.config, model.config
        hidden = model.embed(batch.input_ids)
        if config.arm == "matta":
            ta_logits = model.head_forward(hidden, net.ta_widths)
            student_logits = model.head_forward(hidden, net.student_widths)
            sampled = [
                model.head_forward(hidden, sample_decoder_widths(net, sampler, self.low))
                for _ in range(config.sandwich_k)
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

    def result(self, **fields: Any) -> LMTrainResult:
        return LMTrainResult(**fields, optim=self.optim)

    def before_update(self, optimizer: torch.optim.Optimizer | SplitOptimizer, step: int, total_steps: int) -> None:
        # Set from the step alone (never accumulated), so a resumed run gets the same rate at every step.
        lr = self.config.lr * self.optim.lr_scale(step, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr

    def after_backward(self, model: NestedDecoder) -> dict[str, float]:
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), self.optim.clip_norm or math.inf)
        return {"grad_norm": float(grad_norm)}

    def validate(self, model: NestedDecoder) -> dict[str, float] | None:
        if self.validation is None:
            return None
        return evaluate_next_token(model, self.validation, self.eval_widths, self.config.batch_size)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"kind": CHECKPOINT_KIND, "lm_optim": self.optim.to_dict()}

    def check_checkpoint(self, ref: Path | str, state: dict[str, Any]) -> None:
        if state.get("kind") != CHECKPOINT_KIND:
            raise CheckpointError(f"cannot resume from {ref}: it is not an LM training checkpoint (a classifier "
                                  "run's?); give an LM run's checkpoint directory or an empty one")
        diffs = config_diff(state["lm_optim"], as_json(self.optim.to_dict()), "lm_optim")
        if diffs:
            raise CheckpointError(f"cannot resume from {ref}: it belongs to a different run ({'; '.join(diffs)})")


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


def _eval_widths(config: DecoderConfig, arm: str) -> dict[str, DecoderWidths]:
    if arm == "matta":
        return {"ta": config.ta_widths, "student": config.student_widths}
    return {"student": config.student_widths}
