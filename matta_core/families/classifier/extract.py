"""Extraction: cut a standalone model of given per-layer widths out of the nested TA.

`extract` copies only the sliced tensors into a plain `StandaloneClassifier`, so the result is physically
smaller (its memory and compute are those of its widths) and shares no storage with the TA. `save_extracted` /
`load_extracted` store it as safetensors + JSON: loading never unpickles anything. The saved form
(`ExtractedConfig`, the file names, the loader) is defined in `matta_core.serving.matta_text_classifier`, the file
a logged model carries: what is saved here is read back by the same code wherever it is served.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.model import NestedClassifier
from matta_core.nested.widths import Widths
from matta_core.serving.matta_text_classifier import (
    CONFIG_FILE,
    FORMAT,
    WEIGHTS_FILE,
    ExtractedConfig,
    StandaloneClassifier,
    load_classifier,
)
from matta_core.storage.atomic import usual_mode

__all__ = [
    "CONFIG_FILE", "FORMAT", "WEIGHTS_FILE", "ExtractedConfig", "expected_param_count", "extract",
    "extracted_config", "load_extracted", "save_extracted",
]


def extracted_config(config: ClassifierConfig, widths: Widths, labels: tuple[str, ...] = ()) -> ExtractedConfig:
    """The standalone config for `widths` of a nested model with `config`."""
    return ExtractedConfig(
        num_buckets=config.features.num_buckets,
        embed_dim=config.embed_dim_for(widths),
        hidden_widths=tuple(widths),
        num_classes=config.num_classes,
        num_dense_features=config.num_dense_features,
        activation=config.activation,
        features=config.features,
        labels=tuple(labels),
        ta_widths=config.hidden_widths,
    )


def extract(model: NestedClassifier, widths: Widths) -> StandaloneClassifier:
    """A standalone copy of `model` at per-layer `widths` (validated; errors name the layer and allowed range)."""
    widths = model.check_widths(widths)
    dims = model.config.embed_dim_for(widths)  # only the dims this width reads travel: the table shrinks with it
    state: dict[str, torch.Tensor] = {
        "embedding.weight": model.embedding.weight[:, :dims].detach().clone(memory_format=torch.contiguous_format),
        "idf": model.idf.detach().clone(),
    }
    in_width = dims + model.config.num_dense_features
    for i, (block, width) in enumerate(zip(model.blocks, widths, strict=True)):
        for name, tensor in block.sliced_state(in_width, width).items():
            state[f"blocks.{i}.{name}"] = tensor
        in_width = width
    for name, tensor in model.head.sliced_state(in_width, model.config.num_classes).items():
        state[f"head.{name}"] = tensor
    # Every tensor above is a fresh copy, so the model can own them: built around them, not initialised and then
    # overwritten (the embedding table's random draw is most of an extraction's time).
    return extracted_config(model.config, widths).build(weights=state).eval()


def expected_param_count(config: ClassifierConfig, widths: Widths) -> int:
    """Parameters a standalone model at `widths` must have (trainable ones; the IDF buffer is not counted)."""
    dims = config.embed_dim_for(widths)
    total = config.features.num_buckets * dims
    in_width = dims + config.num_dense_features
    for width in widths:
        total += in_width * width + width
        in_width = width
    return total + in_width * config.num_classes + config.num_classes


def save_extracted(model: StandaloneClassifier, config: ExtractedConfig, directory: str | Path) -> Path:
    """Write `model.safetensors` + `config.json` into `directory`, atomically (a temp dir renamed into place)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
    usual_mode(staging / WEIGHTS_FILE)
    usual_mode(staging)
    (staging / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))
    if directory.exists():
        # Replace an older extraction whole; the rename below is the commit point.
        retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
        os.replace(directory, retired / "model")
        os.replace(staging, directory)
        _remove_tree(retired)
    else:
        os.replace(staging, directory)
    return directory


def load_extracted(directory: str | Path) -> tuple[StandaloneClassifier, ExtractedConfig]:
    """Load a saved standalone model (no pickle: safetensors + JSON), with the code that serves it."""
    return load_classifier(directory)


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    path.rmdir()
