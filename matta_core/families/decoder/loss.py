"""The MatTA objective for causal LMs: the classifier objective (`matta_core.families.classifier.loss`) applied per
token.

Every term is a mean over the scored tokens of the batch (the loss mask), so rows of different lengths weigh by
their token counts and padding contributes nothing:

    supervised(Z) = alpha * sparse_topk_kd(Z, Teacher top-k) + (1 - alpha) * CE(Z, next tokens)
    L = w_ta * supervised(A) + w_student * [supervised(S) + gamma(t) * dense_kd(sg(A) -> S)]
      + w_sampled * mean_k [supervised(M_k) + gamma(t) * dense_kd(sg(A) -> M_k)]

The Teacher side is sparse. The cache keeps only the k largest raw logits per position, not the partition
function, so the Teacher's probability of those k tokens, and hence the mass it leaves outside them, is unknown.
The Teacher's target is therefore the softmax of its top-k logits over those k entries alone (renormalised; no
"rest of the vocabulary" bucket, whose mass would be a guess). The Student side is the FULL-vocabulary
log-softmax gathered at the k ids: KL(p_T || q_S) = sum_i p_T(i) log(p_T(i) / q_S(i)) is >= -log(sum_i q_S(i)), so
Student mass outside the Teacher's top k is penalised, and the term is 0 only when the Student puts all its mass on
those k tokens in the Teacher's proportions.

Renormalisation is faithful only at temperature ~1. Measured on SmolLM2-135M-Instruct (full logits at 213
positions of 24 wiki_sents lines): the top 32 tokens hold on average 77 % of the tempered next-token mass at
tau = 1 (median 80 %, 10th percentile 50 %), but 14 % at tau = 2 and 1.2 % at tau = 4. At the
classifier's tau = 4 the renormalised target would put all its mass on 32 tokens where the real tempered Teacher
puts ~99 % elsewhere, and the KD term would push the Student to be far over-confident; so LM training uses
tau = 1 (`LM_LOSS_CONFIG`).

Cost: logits are [B, T, V] with V ~ 49k. The three terms of a sub-model are computed in one call with a
hand-written gradient (`token_loss.py`), and no log-probabilities are materialised. The Teacher's renormalised
top-k and the TA's soft targets [B, T, V] are built once per step (no grad) and shared by every width.
"""

from __future__ import annotations

import torch

from matta_core.distillation import LossTerms, matta_objective, ta_distill_ramp
from matta_core.families.decoder.data import LMBatch
from matta_core.families.decoder.token_loss import SoftTarget, TeacherTopK, token_losses
from matta_core.loss_config import LossConfig

# tau = 1 because the Teacher target is a renormalised top-k (module docstring); the other weights as the
# classifier's (alpha 0.5, gamma 0.5 after a 15 % warm-up).
LM_LOSS_CONFIG = LossConfig(temperature=1.0)


def next_token_ce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (NLL in nats) over masked positions; targets at masked-out positions ignored.
    0 when no position is masked in."""
    return token_losses(logits, targets, mask, 1.0)[1]


def sparse_topk_kd(
    student_logits: torch.Tensor,
    topk_values: torch.Tensor,
    topk_indices: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """tau^2 * KL(renormalised Teacher top-k || full-vocabulary Student), mean over masked positions.

    `topk_values` / `topk_indices` [B, T, k]: the Teacher's raw top-k logits and their ids. Entries with index -1
    (no entry) are left out of the renormalisation; a position with none contributes 0. See the module docstring.
    """
    topk = TeacherTopK.build(topk_values, topk_indices, mask, temperature)
    return token_losses(student_logits, None, mask, temperature, topk=topk)[0]


def dense_kd(
    student_logits: torch.Tensor, target_logits: torch.Tensor, mask: torch.Tensor, temperature: float
) -> torch.Tensor:
    """tau^2 * KL(softmax(sg(target)/tau) || softmax(student/tau)) over the full vocabulary, masked token mean.

    The target is always detached (stop-gradient): online distillation trains the narrow model towards the TA,
    never the TA towards it.
    """
    soft = SoftTarget.build(target_logits, temperature)
    return token_losses(student_logits, None, mask, temperature, soft=soft)[2]


def lm_supervised_loss(
    logits: torch.Tensor, batch: LMBatch, config: LossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha * sparse KD + (1 - alpha) * CE, the CE alone): CE only without Teacher data."""
    topk = _teacher_topk(batch, config)
    kd, ce, _ = token_losses(logits, batch.targets, batch.mask, config.temperature, topk=topk)
    return _supervised(kd, ce, topk is not None, config), ce


def lm_matta_loss(
    ta_logits: torch.Tensor,
    student_logits: torch.Tensor,
    batch: LMBatch,
    config: LossConfig,
    progress: float,
    sampled_logits: list[torch.Tensor] | None = None,
) -> LossTerms:
    """The joint TA + Student (+ sampled widths) objective for one batch, per token; see the module docstring.

    Parts are named as the classifier's (`ta_supervised`, `student_supervised`, `student_from_ta`, `gamma`,
    `sampled`, `total`), plus `ta_nll` / `student_nll`: the next-token CE alone, for training perplexity.
    """
    tau = config.temperature
    gamma = ta_distill_ramp(progress, config)
    topk = _teacher_topk(batch, config)
    # Built only when it has weight: the TA's soft targets are the step's largest extra tensor.
    soft = SoftTarget.build(ta_logits, tau) if gamma > 0.0 else None

    def terms(logits: torch.Tensor, online_target: SoftTarget | None) -> tuple[torch.Tensor, ...]:
        kd, ce, online = token_losses(logits, batch.targets, batch.mask, tau, topk=topk, soft=online_target)
        return _supervised(kd, ce, topk is not None, config), ce, online

    ta_sup, ta_nll, _ = terms(ta_logits, None)
    student_sup, student_nll, student_online = terms(student_logits, soft)

    def sampled_terms() -> list[torch.Tensor]:
        sampled = []
        for logits in sampled_logits or []:
            sup, _, online = terms(logits, soft)
            sampled.append(sup + gamma * online)
        return sampled

    nll = {"ta_nll": float(ta_nll.detach()), "student_nll": float(student_nll.detach())}
    return matta_objective(config, gamma, ta_sup, student_sup, student_online, sampled_terms, nll)


def _teacher_topk(batch: LMBatch, config: LossConfig) -> TeacherTopK | None:
    if batch.topk_values is None or batch.topk_indices is None or config.teacher_weight == 0.0:
        return None
    return TeacherTopK.build(batch.topk_values, batch.topk_indices, batch.mask, config.temperature)


def _supervised(kd: torch.Tensor, ce: torch.Tensor, with_teacher: bool, config: LossConfig) -> torch.Tensor:
    """alpha * KD + (1 - alpha) * CE; CE alone without a Teacher (as the classifier's `supervised_loss`)."""
    if not with_teacher:
        return ce
    alpha = config.teacher_weight
    return alpha * kd + (1.0 - alpha) * ce
