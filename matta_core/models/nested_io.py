"""Saving and loading the trained nested model (the TA with every sub-model inside): safetensors + JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from matta_core.models.classifier_config import ClassifierConfig
from matta_core.models.nested_classifier import NestedClassifier
from matta_core.storage.atomic import usual_mode

WEIGHTS = "model.safetensors"
CONFIG = "model_config.json"


def save_nested(model: NestedClassifier, directory: str | Path) -> Path:
    """Write the weights and config; each file lands whole (written beside, then renamed)."""
    return write_model_folder(model, model.config.to_dict(), directory)


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


def load_nested(directory: str | Path) -> NestedClassifier:
    """Rebuild a `NestedClassifier` saved by `save_nested` (no pickle)."""
    directory = Path(directory)
    for name in (WEIGHTS, CONFIG):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} is missing: {directory} is not a saved nested model")
    config = ClassifierConfig.from_dict(json.loads((directory / CONFIG).read_text()))
    # Built on the meta device, uninitialised, and given the loaded tensors (strictly: every one, nothing else): a
    # random initialisation would be overwritten at once, and its normal draws over the embedding table are most of
    # a load. Not even on the meta device: a normal draw there imports torch's compiler (~1 s per process).
    with torch.device("meta"):
        model = NestedClassifier(config, init=False)
    model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True, assign=True)
    return model.eval()
