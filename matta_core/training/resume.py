"""Resuming a run from its newest checkpoint, and refusing a checkpoint that belongs to a different run.

A checkpoint continues a run only if everything that shapes the weights is the same: the model config, the train
config (except `RESUMABLE_CHANGES`, which only observe), the training rows and the run's length. The refusal names
every field that differs, so the user sees at once what changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from matta_core.training.checkpoint import Checkpoint, CheckpointError, load_optimizer_state
from matta_core.training.checkpoint_store import CheckpointStore
from matta_core.training.config import RESUMABLE_CHANGES, TrainConfig
from matta_core.training.determinism import restore_rng_state
from matta_core.training.optim import SplitOptimizer
from matta_core.training.run_state import LossLog, RunState

# A family's own checks on a checkpoint's state.json (checkpoint reference, state); raises CheckpointError.
StateCheck = Callable[[Path | str, dict[str, Any]], None]


def resume_run(
    store: CheckpointStore,
    resume: bool,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | SplitOptimizer,
    sampler: torch.Generator,
    *,
    model_config: dict[str, Any],
    config: TrainConfig,
    rows: int,
    total_steps: int,
    check_state: StateCheck | None = None,
) -> RunState:
    """Load the newest checkpoint in `store` into the model, optimizer and generators (if there is one).

    `model_config` is the family config's `to_dict()`; `check_state` runs before the shared checks.
    """
    latest = latest_to_resume(store, resume)
    if latest is None:
        return RunState()
    ckpt = store.load(latest)
    if check_state is not None:
        check_state(latest, ckpt.state)
    check_resumable(ckpt.path, ckpt.state, model_config, config, rows, total_steps)
    model.load_state_dict(ckpt.model_state, strict=True)
    load_optimizer_state(optimizer, ckpt.optimizer_tensors, ckpt.optimizer_json)
    restore_rng_state(ckpt.rng, sampler)
    return resumed_state(ckpt, config.arm, total_steps)


def latest_to_resume(store: CheckpointStore, resume: bool) -> Path | str | None:
    """The newest checkpoint in `store` (after clearing a killed writer's litter); refused when `resume` is off."""
    store.prepare()
    latest = store.latest()
    if latest is not None and not resume:
        raise CheckpointError(
            f"{store.location} already holds checkpoints (newest {latest}) and resume=False: resume, or give an "
            "empty checkpoint directory"
        )
    return latest


def resumed_state(ckpt: Checkpoint, arm: str, total_steps: int) -> RunState:
    """The run bookkeeping a checkpoint restores; says (on stdout, i.e. in the task's log) where the run resumed."""
    print(f"resuming arm {arm} from checkpoint {ckpt.path} (step {ckpt.step} of {total_steps})", flush=True)
    return RunState(
        log=LossLog.from_dict(ckpt.state["loss_log"]), start_step=ckpt.step,
        wall_seconds=float(ckpt.state["wall_seconds"]), validation=dict(ckpt.state.get("validation", {})),
    )


def check_resumable(
    path: Path | str, state: dict[str, Any], model_config: dict[str, Any], config: TrainConfig, rows: int, total: int
) -> None:
    """Refuse to continue a checkpoint written by a different run, naming every field that differs."""
    diffs = config_diff(state["model_config"], as_json(model_config), "model_config")
    saved_train = {k: v for k, v in state["train_config"].items() if k not in RESUMABLE_CHANGES}
    now_train = {k: v for k, v in as_json(config.to_dict()).items() if k not in RESUMABLE_CHANGES}
    diffs += config_diff(saved_train, now_train, "train_config")
    if state["data_rows"] != rows:
        diffs.append(f"training rows: checkpoint {state['data_rows']}, now {rows}")
    if not diffs and state["total_steps"] != total:
        diffs.append(f"total steps: checkpoint {state['total_steps']}, now {total}")
    if diffs:
        raise CheckpointError(
            f"cannot resume from {path}: it belongs to a different run ({'; '.join(diffs)}). Use the original "
            "settings, or a new checkpoint directory"
        )


def config_diff(saved: Any, now: Any, where: str) -> list[str]:
    """Every leaf where two JSON documents differ, as ``"<where>.<key>: checkpoint <saved>, now <now>"``."""
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(saved) | set(now)):
            out += config_diff(saved.get(key, "<absent>"), now.get(key, "<absent>"), f"{where}.{key}")
        return out
    return [] if saved == now else [f"{where}: checkpoint {saved!r}, now {now!r}"]


def as_json(value: Any) -> Any:
    """`value` as it looks after a trip through state.json (tuples become lists), for a like-for-like compare."""
    return json.loads(json.dumps(value))
