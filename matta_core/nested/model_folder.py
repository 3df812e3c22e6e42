"""A trained nested model's folder, for every family: safetensors weights + JSON config, each file landing whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from matta_core.storage.atomic import usual_mode

WEIGHTS = "model.safetensors"
CONFIG = "model_config.json"


def write_model_folder(
    model: torch.nn.Module, config: dict[str, Any], directory: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """`model.safetensors` (the state dict, with safetensors `metadata`) + `model_config.json` (`config`) in
    `directory`; each file lands whole (written beside, then renamed). Shared by the nested model families.
    Tied weights appear once in `state_dict()`, so no shared-storage copies reach safetensors."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    staging = directory / f".{WEIGHTS}.tmp"
    save_file(state, str(staging), metadata=metadata)
    usual_mode(staging)
    staging.replace(directory / WEIGHTS)
    staging = directory / f".{CONFIG}.tmp"
    staging.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    staging.replace(directory / CONFIG)
    return directory
