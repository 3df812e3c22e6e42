"""The MatTA objective: Teacher -> TA, Teacher -> Student, and online TA -> Student distillation.

For one batch with Teacher logits `T`, labels `y`, TA logits `A` and Student logits `S` (and any sampled
intermediate sub-model logits `M_k`, trained like the Student — the sandwich rule):

    L = w_ta * supervised(A)                                   TA learns from Teacher and labels
      + w_student * [supervised(S) + gamma(t) * distill(sg(A) -> S)]
      + w_sampled * mean_k [supervised(M_k) + gamma(t) * distill(sg(A) -> M_k)]

    supervised(Z) = alpha * tau^2 * KL(softmax(T/tau) || softmax(Z/tau)) + (1 - alpha) * CE(Z, y)
    distill(sg(A) -> Z) = tau^2 * KL(softmax(sg(A)/tau) || softmax(Z/tau))

`sg` is stop-gradient: the online term trains the narrow model towards the TA, never the TA towards the narrow
model (the TA's shared weights would otherwise be pulled down to the Student's capacity). `tau^2` keeps soft-target
gradients on the scale of the hard-label term (Hinton et al., 2015). `gamma(t)` ramps linearly from 0 over the
first `ta_distill_warmup` fraction of training: early on the TA is no better than the Student and would teach noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Defined apart so that reading its defaults costs no torch import; imported from here as before.
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


def supervised_loss(
    logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    labels: torch.Tensor | None,
    config: LossConfig,
) -> torch.Tensor:
    """alpha * soft-target KD from the Teacher + (1 - alpha) * cross-entropy on labels (whichever are present)."""
    if teacher_logits is None and labels is None:
        raise ValueError("a training batch needs Teacher outputs, labels, or both")
    if teacher_logits is None:
        return F.cross_entropy(logits, labels)
    soft = soft_kl(logits, teacher_logits, config.temperature)
    if labels is None or config.teacher_weight == 1.0:
        return soft
    alpha = config.teacher_weight
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(logits, labels)


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


def matta_loss(
    ta_logits: torch.Tensor,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    labels: torch.Tensor | None,
    config: LossConfig,
    progress: float,
    sampled_logits: list[torch.Tensor] | None = None,
) -> LossTerms:
    """The joint TA + Student (+ sampled widths) objective for one batch; see the module docstring."""
    gamma = ta_distill_ramp(progress, config)
    ta_target = ta_logits.detach()
    ta_sup = supervised_loss(ta_logits, teacher_logits, labels, config)
    student_sup = supervised_loss(student_logits, teacher_logits, labels, config)
    student_online = soft_kl(student_logits, ta_target, config.temperature)
    total = config.ta_weight * ta_sup + config.student_weight * (student_sup + gamma * student_online)
    parts = {
        "ta_supervised": float(ta_sup.detach()),
        "student_supervised": float(student_sup.detach()),
        "student_from_ta": float(student_online.detach()),
        "gamma": gamma,
    }
    if sampled_logits:
        sampled = [
            supervised_loss(z, teacher_logits, labels, config) + gamma * soft_kl(z, ta_target, config.temperature)
            for z in sampled_logits
        ]
        sampled_mean = torch.stack(sampled).mean()
        total = total + config.sampled_weight * sampled_mean
        parts["sampled"] = float(sampled_mean.detach())
    parts["total"] = float(total.detach())
    return LossTerms(total, parts)
