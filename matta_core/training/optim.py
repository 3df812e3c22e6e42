"""Optimizers by name: a small registry, so a new one (e.g. Shampoo) is one `register_optimizer` call away.

Why AdamW is the default: the model is a large embedding bag whose rows see sparse, unevenly sized gradients
(rare n-grams get few, small updates) under a small MLP. Adam's per-parameter step normalisation gives those rows
useful steps at one learning rate (3e-3, chosen by benchmarks/tune_matta.py) without per-layer tuning; plain SGD
needs a much larger rate for the embedding than for the MLP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

OptimizerFactory = Callable[[Iterable[nn.Parameter], float, float], torch.optim.Optimizer]
"""(params, lr, weight_decay) -> optimizer."""

_REGISTRY: dict[str, OptimizerFactory] = {}


def register_optimizer(name: str, factory: OptimizerFactory, *, replace: bool = False) -> None:
    """Make `factory` available as `TrainConfig(optimizer=name)`.

    The factory must build an optimizer whose `state_dict()` holds only tensors and JSON-representable values
    (numbers, strings, lists, dicts, None): checkpoints store it without pickle.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"optimizer name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"optimizer {name!r} is already registered; pass replace=True to override it")
    _REGISTRY[name] = factory


def optimizer_names() -> list[str]:
    """The registered optimizer names, sorted."""
    return sorted(_REGISTRY)


def make_optimizer(
    name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Build the optimizer registered as `name`."""
    if name not in _REGISTRY:
        raise ValueError(f"optimizer {name!r} unknown; allowed: {optimizer_names()}")
    return _REGISTRY[name](params, lr, weight_decay)


def _adamw(params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _sgd(params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    # Momentum 0.9: without it SGD on sparse embedding gradients is too noisy to be a fair comparison point.
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)


def _shampoo(params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    # Registered here, not in its own (long) module, so the registry knows every built-in name without that
    # module having been imported by anyone first.
    from matta_core.training.shampoo import Shampoo

    return Shampoo(params, lr=lr, weight_decay=weight_decay)


register_optimizer("adamw", _adamw)
register_optimizer("sgd", _sgd)
register_optimizer("shampoo", _shampoo)


class SplitOptimizer:
    """Two optimizers behind one interface: lazy Adam for sparse-gradient tables, the chosen one for the rest.

    Why: the hashed embedding table (2^18 x 128 = 33.5M weights) holds >95 % of the parameters but a batch touches
    only ~15k of its rows. A dense optimizer reads and writes all 33.5M weights and moments every step (measured
    ~180 ms/step on 2 cores); sparse gradients with `SparseAdam` update only the touched rows (~14 ms/step).
    SparseAdam is "lazy": a row's moments advance only when the row is used, which is the usual choice for large
    embedding tables. The state dict numbers the parameters of both optimizers consecutively, sparse ones first,
    so checkpoints store it like any single optimizer's.
    """

    def __init__(self, sparse: torch.optim.Optimizer, dense: torch.optim.Optimizer) -> None:
        self.parts = (sparse, dense)

    @property
    def param_groups(self) -> list[dict]:
        return [group for part in self.parts for group in part.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def state_dict(self) -> dict:
        state: dict[int, dict] = {}
        groups: list[dict] = []
        offset = 0
        for part in self.parts:
            sub = part.state_dict()
            state.update({offset + int(i): s for i, s in sub["state"].items()})
            for group in sub["param_groups"]:
                groups.append({**group, "params": [offset + int(i) for i in group["params"]]})
            offset += sum(len(g["params"]) for g in sub["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = iter(state_dict["param_groups"])
        offset = 0
        for part in self.parts:
            sub_groups = [next(groups) for _ in part.param_groups]
            count = sum(len(g["params"]) for g in sub_groups)
            part.load_state_dict({
                "state": {
                    int(i) - offset: s for i, s in state_dict["state"].items() if offset <= int(i) < offset + count
                },
                "param_groups": [{**g, "params": [int(i) - offset for i in g["params"]]} for g in sub_groups],
            })
            offset += count


def make_model_optimizer(
    name: str, model: nn.Module, lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer | SplitOptimizer:
    """The optimizer for `model`: `name` for dense parameters, lazy Adam for sparse-gradient embedding tables."""
    sparse_ids = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, nn.Embedding | nn.EmbeddingBag) and module.sparse
    }
    sparse = [p for p in model.parameters() if id(p) in sparse_ids]
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    if not sparse:
        return make_optimizer(name, dense, lr, weight_decay)
    # Weight decay is not applied to the table (SparseAdam has none): see TrainConfig.weight_decay for why it
    # would hurt rare n-grams anyway.
    return SplitOptimizer(torch.optim.SparseAdam(sparse, lr=lr), make_optimizer(name, dense, lr, weight_decay))
