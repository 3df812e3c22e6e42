"""Shampoo for the dense parameters, with blocked preconditioners and per-block Adam grafting.

Registered (in optim.py) as `TrainConfig(optimizer="shampoo")`; like every dense optimizer here it runs beside the
lazy Adam that updates the sparse embedding table (see optim.SplitOptimizer).

For a matrix gradient G (one block of a weight), Shampoo keeps two statistics, L = EMA(G G^T) and
R = EMA(G^T G), and steps along L^{-1/4} M R^{-1/4} (M: the first moment of G); Gupta et al. (2018), in the
"Distributed Shampoo" form of Anil et al. (2020) / Shi et al. (2023):

- **Adam grafting, per block**: the step's direction comes from Shampoo and its size (Frobenius norm) from Adam
  run on the same block. Shampoo's own step size depends on the conditioning of L and R, so without grafting
  it would need its own learning rate; with it, the learning rate means what it means for AdamW, and the
  equal-budget comparisons in the benchmark use one `lr` for every optimizer.
- **Blocks** of at most `block_size` x `block_size`: the statistics of a 1024 x 128 weight cost 2 * 1024^2 * 128
  FLOPs per step in full, an eighth of that in 128-blocks, and the inverse roots are eigendecompositions of
  128 x 128 matrices instead of 1024 x 1024 (milliseconds, not a second, on 2 cores). Block edges fall on
  multiples of 128, which are also nested widths: a preconditioner never mixes units across those widths.
- **Inverse roots every `precondition_every` steps** (statistics every step), by a float64 eigendecomposition
  with damping relative to the largest eigenvalue; until the first one, the step is Adam's.
- Vectors (biases) and tensors of other ranks take the plain Adam step.

The state is tensors plus an integer step count: checkpoints store it without pickle, and a resumed run
continues bit for bit (the eigendecomposition is deterministic on CPU).

Why not `pytorch_optimizer` (v4.1): its `ScalableShampoo` keeps Python objects (`PreConditioner`, graft objects)
in the optimizer state, which a pickle-free checkpoint cannot store; its plain `Shampoo` has no grafting (so it
needs its own learning rate) and, by default, a full SVD of every 1024 x 1024 statistic at every step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class Shampoo(torch.optim.Optimizer):
    """Blocked Shampoo with per-block Adam grafting and decoupled weight decay (see the module docstring)."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        block_size: int = 128,
        precondition_every: int = 10,
        matrix_eps: float = 1e-6,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if weight_decay < 0 or eps <= 0 or matrix_eps <= 0:
            raise ValueError(f"need weight_decay >= 0, eps > 0, matrix_eps > 0; got {weight_decay}, {eps}, "
                             f"{matrix_eps}")
        if block_size < 1 or precondition_every < 1:
            raise ValueError(f"block_size and precondition_every must be >= 1, got {block_size}, "
                             f"{precondition_every}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, block_size=block_size,
                        precondition_every=precondition_every, matrix_eps=matrix_eps)
        super().__init__(params, defaults)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load as torch does, then copy every state tensor into freshly allocated storage.

        Why: tensors read from a checkpoint can sit at any byte offset of the file's buffer, and the matrix
        products that accumulate the statistics (`addmm_`) pick kernels by memory alignment, so they can round
        differently from the same product on aligned memory (seen: 1 ulp in R after a resume). A fresh copy is
        aligned like the tensors of a run never interrupted, which keeps resume bit-exact.
        """
        super().load_state_dict(state_dict)
        for param_state in self.state.values():
            for key, value in param_state.items():
                if isinstance(value, torch.Tensor):
                    param_state[key] = value.clone(memory_format=torch.contiguous_format)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]  # torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Shampoo takes dense gradients; sparse tables go to lazy Adam (SplitOptimizer)")
                self._update(p, group)
        return loss

    def _update(self, p: nn.Parameter, group: dict) -> None:
        grad = p.grad
        assert grad is not None
        state = self.state[p]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        step = state["step"]
        state["exp_avg"].lerp_(grad, 1.0 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        momentum = state["exp_avg"] / (1.0 - beta1**step)
        adam = momentum / ((state["exp_avg_sq"] / (1.0 - beta2**step)).sqrt_().add_(group["eps"]))
        update = adam if p.dim() != 2 else self._shampoo_direction(p, grad, momentum, adam, state, group)
        if group["weight_decay"]:
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
        p.add_(update, alpha=-group["lr"])

    def _shampoo_direction(
        self, p: nn.Parameter, grad: torch.Tensor, momentum: torch.Tensor, adam: torch.Tensor, state: dict,
        group: dict,
    ) -> torch.Tensor:
        """Adam's step re-pointed, block by block, along L^{-1/4} M R^{-1/4} (same Frobenius norm per block)."""
        size, beta2, step = group["block_size"], group["betas"][1], state["step"]
        rows, cols = range(0, p.shape[0], size), range(0, p.shape[1], size)
        refresh = step % group["precondition_every"] == 0
        update = adam.clone()
        for i in rows:
            for j in cols:
                key = f"{i // size}_{j // size}"
                block = (slice(i, i + size), slice(j, j + size))
                g = grad[block]
                if f"L_{key}" not in state:
                    state[f"L_{key}"] = torch.zeros(g.shape[0], g.shape[0], dtype=p.dtype, device=p.device)
                    state[f"R_{key}"] = torch.zeros(g.shape[1], g.shape[1], dtype=p.dtype, device=p.device)
                state[f"L_{key}"].mul_(beta2).addmm_(g, g.T, alpha=1.0 - beta2)
                state[f"R_{key}"].mul_(beta2).addmm_(g.T, g, alpha=1.0 - beta2)
                if refresh:
                    state[f"L_inv_{key}"] = _inverse_fourth_root(state[f"L_{key}"], group["matrix_eps"])
                    state[f"R_inv_{key}"] = _inverse_fourth_root(state[f"R_{key}"], group["matrix_eps"])
                if f"L_inv_{key}" not in state:
                    continue  # no preconditioner yet: this block takes Adam's step
                direction = state[f"L_inv_{key}"] @ momentum[block] @ state[f"R_inv_{key}"]
                scale = update[block].norm() / direction.norm().clamp_min(1e-30)
                update[block] = direction * scale
        return update


def _inverse_fourth_root(matrix: torch.Tensor, relative_eps: float) -> torch.Tensor:
    """(A + eps * max_eig * I)^{-1/4} of a symmetric PSD matrix, via a float64 eigendecomposition.

    float64 because the small eigenvalues, raised to -1/4, dominate the result and float32 eigh loses them;
    damping relative to the largest eigenvalue keeps the condition number bounded whatever the gradient scale.
    """
    a = matrix.double()
    a = (a + a.T) / 2  # rounding in the EMA leaves tiny asymmetries; eigh assumes exact symmetry
    values, vectors = torch.linalg.eigh(a)
    damping = relative_eps * max(float(values.max()), 0.0) + 1e-30
    values = (values.clamp_min(0.0) + damping).pow(-0.25)
    return ((vectors * values) @ vectors.T).to(matrix.dtype)

