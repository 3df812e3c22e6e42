"""Distillation terms every model family uses: the soft-target KL, the online-distillation ramp and the loss record.

The families' objectives (`matta_core.families.<family>.loss`) are built from these: the classifier's over one
logit row per example, the decoder's per token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from matta_core.loss_config import LossConfig


def soft_kl(student_logits: torch.Tensor, target_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """tau^2 * KL(softmax(target/tau) || softmax(student/tau)), averaged over the batch.

    Gradients flow into `student_logits` only if the caller passes a detached target; this function does not
    decide that (the Teacher's logits are constants anyway, the TA's are detached by `matta_loss`).
    """
    target_log_probs = F.log_softmax(target_logits / temperature, dim=-1)
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    kl = F.kl_div(student_log_probs, target_log_probs, reduction="batchmean", log_target=True)
    return kl * temperature**2


def ta_distill_ramp(progress: float, config: LossConfig) -> float:
    """gamma at a point of training, `progress` in [0, 1]: linear from 0 to `ta_distill_weight` over warm-up."""
    if config.ta_distill_warmup == 0.0:
        return config.ta_distill_weight
    return config.ta_distill_weight * min(1.0, max(0.0, progress) / config.ta_distill_warmup)


@dataclass
class LossTerms:
    """The total and each named term (detached floats for logging)."""

    total: torch.Tensor
    parts: dict[str, float]


def matta_objective(
    config: LossConfig,
    gamma: float,
    ta_supervised: torch.Tensor,
    student_supervised: torch.Tensor,
    student_from_ta: torch.Tensor,
    sampled_terms: Callable[[], list[torch.Tensor]] | None = None,
    extra_parts: Mapping[str, float] | None = None,
) -> LossTerms:
    """The MatTA objective from each model's terms, the same for every family:

        w_ta * supervised(TA) + w_student * [supervised(S) + gamma * distill(sg(TA) -> S)] + w_sampled * mean(sampled)

    `sampled_terms()` gives each sampled width's ``supervised + gamma * distill`` and is called after the TA and
    Student terms are combined (keeping the autograd graph, and so the gradients' summation order, as it was).
    `extra_parts` (e.g. the decoder's next-token NLLs) are logged after `gamma`.
    """
    total = config.ta_weight * ta_supervised + config.student_weight * (student_supervised + gamma * student_from_ta)
    parts = {
        "ta_supervised": float(ta_supervised.detach()),
        "student_supervised": float(student_supervised.detach()),
        "student_from_ta": float(student_from_ta.detach()),
        "gamma": gamma,
        **(extra_parts or {}),
    }
    sampled = sampled_terms() if sampled_terms is not None else []
    if sampled:
        sampled_mean = torch.stack(sampled).mean()
        total = total + config.sampled_weight * sampled_mean
        parts["sampled"] = float(sampled_mean.detach())
    parts["total"] = float(total.detach())
    return LossTerms(total, parts)
