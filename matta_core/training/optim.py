"""Optimizers by name: a small registry, so a new one (e.g. Shampoo) is one `register_optimizer` call away.

Why AdamW is the default: the model is a large embedding bag whose rows see sparse, unevenly sized gradients
(rare n-grams get few, small updates) under a small MLP. Adam's per-parameter step normalisation gives those rows
useful steps at one learning rate (1e-2) without per-layer tuning; plain SGD needs a much larger rate for the
embedding than for the MLP.
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


register_optimizer("adamw", _adamw)
register_optimizer("sgd", _sgd)
