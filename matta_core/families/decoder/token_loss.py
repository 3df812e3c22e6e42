"""The three per-token losses of one sub-model's logits, computed together with a hand-written gradient.

For logits z [B, T, V], a loss mask m [B, T] (N = number of True positions) and temperature tau, one call gives
three masked token means (definitions and the reasons for them: `matta_core.families.decoder.loss`):

    sparse KD  tau^2 * sum_i p_T(i) (log p_T(i) - log softmax(z/tau)[k_i])   Teacher top-k, renormalised
    CE         logsumexp(z) - z[target]                                       next token
    dense KD   tau^2 * KL(p_A || softmax(z/tau))                               the TA's soft targets, no grad

Why by hand: V is ~49k, and autograd differentiates logsumexp, two gathers and a dot product as ~15 separate passes
over [B, T, V] per sub-model (zero-filled scatter buffers, exp, sub, mul, adds); on CPU those passes cost more
than the LM head's matmuls. The gradient has a closed form (s_tau = softmax(z/tau), s_1 = softmax(z), P the
Teacher's top-k probabilities scattered onto the vocabulary):

    d/dz = (1/N) m * [ g_kd * tau * (sum_i p_T(i) * s_tau - P) + g_ce * (s_1 - onehot(target))
                       + g_on * tau * (s_tau - p_A) ]

with g_* the upstream weights of each output (alpha, 1 - alpha, gamma, ... whatever the caller combined them
with), so it is built in about four passes and one [B, T, V] buffer. Forward saves only tensors that already exist
(the logits, p_A) and [B, T]-sized ones. The tests check it against plain autograd.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


@dataclass(frozen=True)
class TeacherTopK:
    """The Teacher's top-k targets for a batch, renormalised at one temperature; shared by every sub-model."""

    probs: torch.Tensor  # [B, T, k] softmax(values / tau) over the valid entries; 0 at absent ones and pads
    log_probs: torch.Tensor  # [B, T, k], 0 where probs is 0
    indices: torch.Tensor  # [B, T, k] vocabulary ids, absent entries (-1) and pads replaced by 0 (weight 0)

    @classmethod
    def build(
        cls, values: torch.Tensor, indices: torch.Tensor, mask: torch.Tensor, temperature: float
    ) -> TeacherTopK:
        """From raw top-k logits and ids [B, T, k]; entries with id -1, and every entry off the mask, are absent."""
        valid = mask.unsqueeze(-1) & (indices >= 0)
        scaled = torch.where(valid, values / temperature, torch.full_like(values, float("-inf")))
        log_p = F.log_softmax(scaled, dim=-1)
        # A position with no valid entry gives -inf - (-inf) = NaN: `valid` zeroes it (it contributes 0).
        log_p = torch.where(valid, log_p, torch.zeros_like(log_p))
        probs = torch.where(valid, log_p.exp(), torch.zeros_like(log_p))
        return cls(probs, log_p, torch.where(valid, indices, torch.zeros_like(indices)))


@dataclass(frozen=True)
class SoftTarget:
    """A model's soft targets softmax(sg(logits)/tau) [B, T, V] and their sum p log p [B, T]; built without grad."""

    probs: torch.Tensor
    neg_entropy: torch.Tensor

    @classmethod
    def build(cls, logits: torch.Tensor, temperature: float) -> SoftTarget:
        with torch.no_grad():
            scaled = logits.detach() if temperature == 1.0 else logits.detach() / temperature
            probs = F.log_softmax(scaled, dim=-1)
            # log p = scaled - lse, so lse is read off at the max (where log p is near 0, so exact in float32), and
            # sum p log p = <p, scaled> - lse: the log-probabilities are exponentiated in place, one [B, T, V] buffer.
            lse = scaled.amax(-1) - probs.amax(-1)  # as `_logsumexp`
            probs.exp_()
            return cls(probs, _rowdot(probs, scaled) - lse)


def token_losses(
    logits: torch.Tensor,
    targets: torch.Tensor | None,
    mask: torch.Tensor,
    temperature: float,
    topk: TeacherTopK | None = None,
    soft: SoftTarget | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sparse KD, CE, dense KD) of `logits` [B, T, V], each a mean over `mask`; a term whose input is None is 0.

    `topk` and `soft` must have been built at `temperature`. Masked-out positions contribute nothing (their targets
    may be anything); with no masked-in position every term is 0.
    """
    zero = torch.zeros((), dtype=targets.dtype if targets is not None else torch.long)
    return _TokenLosses.apply(
        logits,
        targets if targets is not None else zero,
        mask,
        float(temperature),
        targets is not None,
        *(None, None, None) if topk is None else (topk.probs.to(logits.dtype), topk.log_probs.to(logits.dtype),
                                                  topk.indices),
        *(None, None) if soft is None else (soft.probs, soft.neg_entropy),
    )


class _TokenLosses(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        tau: float,
        with_ce: bool,
        topk_p: torch.Tensor | None,
        topk_log_p: torch.Tensor | None,
        topk_idx: torch.Tensor | None,
        soft_p: torch.Tensor | None,
        soft_neg_entropy: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        count = mask.sum().clamp(min=1).to(logits.dtype)
        zero = logits.new_zeros(())

        def masked_mean(per_token: torch.Tensor) -> torch.Tensor:
            # `where`, not a product: a NaN or inf at a padded position must not leak through 0 * NaN.
            return torch.where(mask, per_token, zero).sum() / count

        scaled = logits if tau == 1.0 else logits / tau
        lse_tau = _logsumexp(scaled)
        kd, ce, online = logits.new_zeros(()), logits.new_zeros(()), logits.new_zeros(())
        safe_targets = None
        if with_ce:
            lse_one = lse_tau if tau == 1.0 else _logsumexp(logits)
            safe_targets = torch.where(mask, targets, torch.zeros_like(targets)).unsqueeze(-1)
            ce = masked_mean(lse_one - logits.gather(-1, safe_targets).squeeze(-1))
        if topk_p is not None and topk_log_p is not None and topk_idx is not None:
            log_q = scaled.gather(-1, topk_idx) - lse_tau.unsqueeze(-1)
            kd = tau**2 * masked_mean((topk_p * (topk_log_p - log_q)).sum(-1))
        if soft_p is not None and soft_neg_entropy is not None:
            # sum p log q = <p, z/tau> - logsumexp(z/tau) since sum p = 1: no [B, T, V] log q is built.
            online = tau**2 * masked_mean(soft_neg_entropy - (_rowdot(soft_p, scaled) - lse_tau))
        ctx.tau = tau
        ctx.save_for_backward(logits, mask, count, safe_targets, topk_p, topk_idx, soft_p)
        return kd, ce, online

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_kd: torch.Tensor, g_ce: torch.Tensor, g_on: torch.Tensor) -> tuple[Any, ...]:
        logits, mask, count, safe_targets, topk_p, topk_idx, soft_p = ctx.saved_tensors
        tau = ctx.tau
        weight = mask.to(logits.dtype) / count  # [B, T]: 1/N on scored positions, 0 elsewhere
        # Coefficient of s_tau per position: tau * (g_kd * sum_i p_T(i) + g_on), plus g_ce when tau = 1 (s_1 = s_tau).
        coef = torch.zeros_like(weight)
        if topk_p is not None:
            coef = coef + (tau * g_kd) * topk_p.sum(-1)
        if soft_p is not None:
            coef = coef + tau * g_on
        with_ce = safe_targets is not None
        if with_ce and tau == 1.0:
            coef = coef + g_ce
        # s_tau in one buffer (the fused softmax kernel beats exp(z - lse) on CPU), then in-place ops only.
        grad = F.softmax(logits if tau == 1.0 else logits / tau, dim=-1).mul_((weight * coef).unsqueeze(-1))
        if with_ce and tau != 1.0:
            grad.add_(F.softmax(logits, dim=-1).mul_((weight * g_ce).unsqueeze(-1)))
        if topk_p is not None:
            grad.scatter_add_(-1, topk_idx, topk_p * (-tau * g_kd * weight).unsqueeze(-1))
        if with_ce:
            grad.scatter_add_(-1, safe_targets, (-g_ce * weight).unsqueeze(-1))
        if soft_p is not None:
            grad.addcmul_(soft_p, (-tau * g_on * weight).unsqueeze(-1))
        return grad, None, None, None, None, None, None, None, None, None


def _logsumexp(x: torch.Tensor) -> torch.Tensor:
    """logsumexp over the last dim via the fused log-softmax kernel (~1.5x `torch.logsumexp` on CPU): log-softmax
    is x - lse, read off at the max, where it is near 0 and so exact. The [B, T, V] buffer is freed at once."""
    return x.amax(-1) - F.log_softmax(x, dim=-1).amax(-1)


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b, -1) without a product buffer; einsum runs it as a batched matmul (2x `vecdot` on CPU)."""
    return torch.einsum("...v,...v->...", a, b)
