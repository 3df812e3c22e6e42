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

import torch
import torch.nn.functional as F

from matta_core.distillation import LossTerms, matta_objective, soft_kl, ta_distill_ramp
from matta_core.loss_config import LossConfig


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

    def sampled_terms() -> list[torch.Tensor]:
        return [
            supervised_loss(z, teacher_logits, labels, config) + gamma * soft_kl(z, ta_target, config.temperature)
            for z in sampled_logits or []
        ]

    return matta_objective(config, gamma, ta_sup, student_sup, student_online, sampled_terms)
