"""How an LM training run is configured: the shared `TrainConfig` with LM defaults, plus `LMOptimConfig`.

The classifier trainer's `TrainConfig` carries everything both trainers share (arm, budget, batch, lr, optimizer,
seed, sandwich rule, loss weights, checkpoints); `LMOptimConfig` adds what only the transformer needs (learning-rate
warm-up and gradient clipping), so the classifier's config and checkpoints stay as they are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from matta_core.families.decoder.loss import LM_LOSS_CONFIG
from matta_core.training.config import TrainConfig

# 1e-3 with AdamW: the usual rate for GPT-style models of this size (nanoGPT's small character model; GPT-2 small
# used 6e-4 at 12 layers). The classifier's 3e-3 was tuned for an embedding bag under a small MLP, where sparse
# rows need large steps; a transformer's attention and LayerNorm weights diverge sooner. Not tuned here.
LM_LR = 1e-3
# 16 rows of up to ~64 tokens: ~1k scored tokens per step, and [16, 64, 49152] float32 logits = 200 MB per width.
LM_BATCH_SIZE = 16


@dataclass(frozen=True)
class LMOptimConfig:
    """Learning-rate warm-up and gradient clipping for decoder training; the same for every arm."""

    # Linear warm-up from lr / warmup_steps to lr over this fraction of the run, then constant (like the
    # classifier trainer; no decay). Adam's second-moment estimates are noisy for the first steps, and a full-size
    # step then can blow up attention logits. 2 %: GPT-2-style recipes warm up over ~1-5 % of training.
    warmup_fraction: float = 0.02
    # Global L2 norm the gradient is clipped to before every step; None = no clipping. 1.0 is the GPT-2 / nanoGPT
    # / Hugging Face Trainer default: it tames the occasional spike from a rare token without touching typical steps.
    clip_norm: float | None = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.warmup_fraction) and 0.0 <= self.warmup_fraction <= 1.0):
            raise ValueError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction!r}")
        if self.clip_norm is not None and not (math.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise ValueError(f"clip_norm must be a positive number or None, got {self.clip_norm!r}")

    def warmup_steps(self, total_steps: int) -> int:
        """Steps of warm-up in a run of `total_steps` (0 = none)."""
        return math.ceil(self.warmup_fraction * total_steps)

    def lr_scale(self, step: int, total_steps: int) -> float:
        """Multiplier of the base lr at 0-based `step`: (step + 1) / warm-up steps during warm-up, else 1."""
        warmup = self.warmup_steps(total_steps)
        return 1.0 if warmup == 0 else min(1.0, (step + 1) / warmup)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMOptimConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LM optim config fields {unknown}; allowed: {sorted(known)}")
        return cls(**data)


def default_lm_train_config(**overrides: Any) -> TrainConfig:
    """A `TrainConfig` with LM defaults (lr `LM_LR`, batch `LM_BATCH_SIZE`, tau = 1 loss); give `steps` or `epochs`.

    `overrides` are `TrainConfig` fields; `loss` may be a `LossConfig` or a dict of fields to change in the LM one.
    """
    loss = overrides.pop("loss", None)
    if isinstance(loss, dict):
        loss = replace(LM_LOSS_CONFIG, **loss)
    base: dict[str, Any] = {"lr": LM_LR, "batch_size": LM_BATCH_SIZE, "loss": loss or LM_LOSS_CONFIG}
    return TrainConfig(**{**base, **overrides})
