"""Training checkpoints: one directory per step, written atomically, with no pickle anywhere.

    <checkpoint_dir>/step-00000100/
        model.safetensors        model state, IDF buffer included
        optimizer.safetensors    the optimizer state's tensors (e.g. AdamW's exp_avg, exp_avg_sq, step)
        optimizer.json           the rest of the optimizer state_dict (param groups, non-tensor state)
        rng.safetensors          generator states (torch CPU, CUDA if used, the width sampler)
        state.json               step, arm, model and train configs, loss history, format version

A checkpoint is staged in a hidden temp directory beside its final name and published with one `os.replace`, so
a reader (or a resumed run) sees either a complete checkpoint or none; a process killed mid-write leaves only a
hidden `.step-*.tmp-*` directory, which `latest_checkpoint` ignores and the next run removes. Loading uses
safetensors and JSON only: a checkpoint from an untrusted source cannot execute code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from matta_core.storage.atomic import usual_mode
from matta_core.training.optim import SplitOptimizer

FORMAT = "matta.training_checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS_FILE = "optimizer.safetensors"
OPTIMIZER_JSON_FILE = "optimizer.json"
RNG_FILE = "rng.safetensors"
STATE_FILE = "state.json"
CHECKPOINT_FILES = (MODEL_FILE, OPTIMIZER_TENSORS_FILE, OPTIMIZER_JSON_FILE, RNG_FILE, STATE_FILE)

_STEP_DIR = re.compile(r"^step-(\d{8,})$")
_STAGING_MARKER = ".tmp-"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written, read or resumed from; the message names the path and the reason."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: tensors on CPU, `state` as written to state.json."""

    # A local directory, or the URI of a checkpoint read from object storage (`checkpoint_store`).
    path: Path | str
    step: int
    model_state: dict[str, torch.Tensor]
    optimizer_tensors: dict[str, torch.Tensor]
    optimizer_json: dict[str, Any]
    rng: dict[str, torch.Tensor]
    state: dict[str, Any]


def checkpoint_name(step: int) -> str:
    """`step-00000100`: zero-padded so that names sort in step order."""
    return f"step-{step:08d}"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `directory` as (step, path), oldest first; temp and foreign entries are skipped."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _STEP_DIR.match(entry.name)
        if match and entry.is_dir() and (entry / STATE_FILE).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in `directory`, or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def save_checkpoint(
    directory: str | Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | SplitOptimizer,
    rng: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> Path:
    """Write `step-XXXXXXXX/` into `directory` atomically and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(step)
    if final.exists():
        raise CheckpointError(f"{final} already exists: checkpoints are never overwritten")
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}{_STAGING_MARKER}", dir=directory))
    try:
        _save_tensors(staging / MODEL_FILE, model.state_dict())
        optimizer_tensors, optimizer_json = flatten_optimizer_state(optimizer.state_dict())
        _save_tensors(staging / OPTIMIZER_TENSORS_FILE, optimizer_tensors)
        _write_json(staging / OPTIMIZER_JSON_FILE, optimizer_json)
        _save_tensors(staging / RNG_FILE, rng)
        # state.json last: a directory holding it is complete even if it was somehow published by hand.
        _write_json(staging / STATE_FILE, {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **state})
        _fsync(staging)
        os.replace(staging, final)
        _fsync(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint directory (safetensors + JSON only)."""
    path = Path(path)
    missing = [name for name in CHECKPOINT_FILES if not (path / name).is_file()]
    if missing:
        raise CheckpointError(f"{path} is not a complete checkpoint: missing {missing}")
    state = json.loads((path / STATE_FILE).read_text())
    if state.get("format") != FORMAT or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path / STATE_FILE}: format {state.get('format')!r} version {state.get('format_version')!r}; "
            f"this matta reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    return Checkpoint(
        path=path,
        step=int(state["step"]),
        model_state=load_file(str(path / MODEL_FILE)),
        optimizer_tensors=load_file(str(path / OPTIMIZER_TENSORS_FILE)),
        optimizer_json=json.loads((path / OPTIMIZER_JSON_FILE).read_text()),
        rng=load_file(str(path / RNG_FILE)),
        state=state,
    )


def prune_checkpoints(directory: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` checkpoints; return what was deleted."""
    removed = [path for _, path in list_checkpoints(directory)[:-keep]] if keep > 0 else []
    for path in removed:
        shutil.rmtree(path)
    return removed


def remove_staging_dirs(directory: str | Path) -> list[Path]:
    """Delete temp directories left by a writer killed mid-checkpoint (only call with no writer running)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [
        entry for entry in directory.iterdir()
        if entry.is_dir() and entry.name.startswith(".step-") and _STAGING_MARKER in entry.name
    ]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def flatten_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer `state_dict` into tensors (`state.<param>.<key>`) and a JSON document for the rest."""
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{key}"] = value
            else:
                other.setdefault(str(param_id), {})[key] = _json_value(value, f"optimizer state {param_id}.{key}")
    groups = [
        {key: _json_value(value, f"optimizer param_groups[{i}].{key}") for key, value in group.items()}
        for i, group in enumerate(state_dict["param_groups"])
    ]
    return tensors, {"param_groups": groups, "state": other}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer | SplitOptimizer, tensors: dict[str, torch.Tensor], document: dict[str, Any]
) -> None:
    """Rebuild the state_dict written by `flatten_optimizer_state` and load it into `optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = tensor
    for param_id, values in document["state"].items():
        state.setdefault(int(param_id), {}).update(values)
    if len(document["param_groups"]) != len(optimizer.param_groups):
        raise CheckpointError(
            f"checkpoint has {len(document['param_groups'])} optimizer param groups, this optimizer "
            f"{len(optimizer.param_groups)}"
        )
    groups = []
    for saved, current in zip(document["param_groups"], optimizer.param_groups, strict=True):
        # JSON has no tuples: give back the type the optimizer itself uses (e.g. AdamW's `betas`).
        groups.append({
            key: tuple(value) if isinstance(current.get(key), tuple) and isinstance(value, list) else value
            for key, value in saved.items()
        })
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _json_value(value: Any, where: str) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{where} is a {type(value).__name__}, which a checkpoint cannot store without pickle; optimizer "
            "state must be tensors or JSON values"
        ) from exc
    return value


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    # Clone to CPU: safetensors needs contiguous, unshared storage, and GPU tensors are written from host memory.
    save_file({name: t.detach().to("cpu", copy=True).contiguous() for name, t in tensors.items()}, str(path))
    usual_mode(path)


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, sort_keys=True))


def _fsync(directory: Path) -> None:
    """Flush a directory's files and the directory entry itself, so a published checkpoint survives a power loss."""
    for entry in directory.iterdir():
        if entry.is_file():
            with open(entry, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
