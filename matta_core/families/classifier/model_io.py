"""Saving and loading the trained nested model (the TA with every sub-model inside): safetensors + JSON."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.model import NestedClassifier
from matta_core.nested.model_folder import CONFIG, WEIGHTS, write_model_folder


def save_nested(model: NestedClassifier, directory: str | Path) -> Path:
    """Write the weights and config; each file lands whole (written beside, then renamed)."""
    return write_model_folder(model, model.config.to_dict(), directory)


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
