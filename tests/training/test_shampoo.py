"""Shampoo for the dense parameters: it optimises, grafts Adam's step size, resumes exactly, stores no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.trainer import train
from matta_core.training import Callback, TrainConfig, latest_checkpoint, load_checkpoint, optimizer_names
from matta_core.training.checkpoint import flatten_optimizer_state
from matta_core.training.optim import SplitOptimizer
from matta_core.training.shampoo import Shampoo
from tests.training.train_tiny import tiny_data, tiny_model_config, tiny_train_config


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return tiny_data()


def ill_conditioned_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear regression whose inputs have scales spread over two decades: where preconditioning matters."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 20, generator=gen) * torch.logspace(-1, 1, 20)
    true_w = torch.randn(5, 20, generator=gen)
    return x, x @ true_w.T, true_w


def fit(optimizer_cls: type[torch.optim.Optimizer], steps: int, **kwargs: object) -> list[float]:
    x, y, _ = ill_conditioned_problem()
    layer = nn.Linear(20, 5)
    torch.manual_seed(0)
    nn.init.zeros_(layer.weight)
    opt = optimizer_cls(layer.parameters(), **kwargs)
    losses = []
    for _ in range(steps):
        loss = ((layer(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_lowers_the_loss_on_a_tiny_problem() -> None:
    losses = fit(Shampoo, 200, lr=0.05, precondition_every=5)
    assert losses[-1] < 0.05 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"


def test_step_has_adams_size_per_block_but_its_own_direction() -> None:
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(200, 150))
    grad = torch.randn(200, 150)
    steps = {}
    for name, opt in {"shampoo": Shampoo([weight], lr=1.0, block_size=128, precondition_every=1),
                      "adam": torch.optim.Adam([weight], lr=1.0)}.items():
        start = weight.detach().clone()
        weight.grad = grad.clone()
        opt.step()
        steps[name] = weight.detach() - start
        with torch.no_grad():
            weight.copy_(start)
    shampoo_state = Shampoo([weight], block_size=128)
    assert shampoo_state.defaults["block_size"] == 128
    for rows in (slice(0, 128), slice(128, 200)):
        for cols in (slice(0, 128), slice(128, 150)):
            a, s = steps["adam"][rows, cols], steps["shampoo"][rows, cols]
            assert torch.allclose(a.norm(), s.norm(), rtol=1e-4), "grafting must keep Adam's step norm per block"
            assert not torch.allclose(a, s, atol=1e-3), "Shampoo's direction should differ from Adam's"


def test_blocks_cover_the_matrix_and_vectors_take_adams_step() -> None:
    layer = nn.Linear(150, 300)  # weight 300 x 150 -> blocks of at most 128 x 128: 3 x 2
    opt = Shampoo(layer.parameters(), lr=1e-3, block_size=128, precondition_every=2)
    for _ in range(2):
        layer(torch.randn(8, 150)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    state = opt.state[layer.weight]
    assert state["step"] == 2
    assert {k for k in state if k.startswith("L_inv_")} == {f"L_inv_{i}_{j}" for i in range(3) for j in range(2)}
    assert state["L_0_0"].shape == (128, 128) and state["R_2_1"].shape == (22, 22)
    assert state["L_2_0"].shape == (44, 44)
    assert set(opt.state[layer.bias]) == {"step", "exp_avg", "exp_avg_sq"}


def test_state_is_tensors_and_json_values_only() -> None:
    layer = nn.Linear(10, 6)
    opt = Shampoo(layer.parameters(), precondition_every=1)
    layer(torch.randn(4, 10)).sum().backward()
    opt.step()
    tensors, document = flatten_optimizer_state(opt.state_dict())
    assert any(name.endswith("L_inv_0_0") for name in tensors)
    json.dumps(document)  # everything that is not a tensor must be JSON
    restored = Shampoo(layer.parameters(), precondition_every=1)
    restored.load_state_dict(opt.state_dict())
    assert restored.state[layer.weight]["step"] == 1


def test_refuses_sparse_gradients_and_bad_settings() -> None:
    table = nn.Embedding(10, 4, sparse=True)
    opt = Shampoo(table.parameters())
    table(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    with pytest.raises(ValueError, match="block_size"):
        Shampoo(nn.Linear(2, 2).parameters(), block_size=0)


def test_registered_for_the_dense_part_beside_lazy_adam(data: TrainingData) -> None:
    assert "shampoo" in optimizer_names()
    model, _ = train(tiny_model_config(), data, tiny_train_config(optimizer="shampoo", steps=12))
    assert isinstance(model, nn.Module)
    from matta_core.training.optim import make_model_optimizer

    optimizer = make_model_optimizer("shampoo", model, 1e-2)
    assert isinstance(optimizer, SplitOptimizer)
    assert isinstance(optimizer.parts[0], torch.optim.SparseAdam) and isinstance(optimizer.parts[1], Shampoo)


class _Interrupt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("arm", ["matta", "ce_only"])
def test_checkpoint_resume_with_shampoo_is_exact(data: TrainingData, tmp_path: Path, arm: str) -> None:
    # Interrupted at 17: resumes from step 15, whose stored inverse roots (computed at step 10) drive steps 16-19.
    config = tiny_train_config(optimizer="shampoo", arm=arm, steps=25, checkpoint_every=5)
    straight, _ = train(tiny_model_config(), data, config, checkpoint_dir=tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_config(), data, config, checkpoint_dir=tmp_path / "resumed", callbacks=[_Interrupt(17)])
    checkpoint = latest_checkpoint(tmp_path / "resumed")
    assert checkpoint is not None and checkpoint.name == "step-00000015"
    assert any("L_inv_" in name for name in load_checkpoint(checkpoint).optimizer_tensors)
    with safe_open(str(checkpoint / "optimizer.safetensors"), framework="pt") as f:
        assert any(key.endswith("R_inv_0_0") for key in f.keys())  # noqa: SIM118 (safe_open has no __iter__)
    for path in checkpoint.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
    resumed, result = train(tiny_model_config(), data, config, checkpoint_dir=tmp_path / "resumed")
    assert result.start_step == 15
    expected, got = straight.state_dict(), resumed.state_dict()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_train_config_accepts_shampoo() -> None:
    assert TrainConfig(steps=1, optimizer="shampoo").optimizer == "shampoo"
