"""Extraction: cut a standalone model of given per-layer widths out of the nested TA.

`extract` copies only the sliced tensors into a plain `StandaloneClassifier`, so the result is physically
smaller (its memory and compute are those of its widths) and shares no storage with the TA. `save_extracted` /
`load_extracted` store it as safetensors + JSON: loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from matta_core.features.hashing import FeaturizerConfig
from matta_core.models.classifier_config import ClassifierConfig
from matta_core.models.nested_classifier import NestedClassifier
from matta_core.models.standalone_classifier import StandaloneClassifier
from matta_core.nested.widths import Widths

FORMAT = "matta.standalone_classifier/v1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ExtractedConfig:
    """Everything needed to rebuild and serve an extracted model, stored as `config.json` beside the weights."""

    num_buckets: int
    embed_dim: int
    hidden_widths: tuple[int, ...]
    num_classes: int
    num_dense_features: int
    activation: str
    features: FeaturizerConfig
    labels: tuple[str, ...] = ()
    # Where it came from: the TA's widths, so a reader can tell a Student from a Mix'n'Match cut.
    ta_widths: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def with_metadata(self, **values: Any) -> ExtractedConfig:
        """A copy with `values` added to `metadata` (name, arm, lineage: whatever a reader needs to know)."""
        return replace(self, metadata={**self.metadata, **values})

    def build(self) -> StandaloneClassifier:
        return StandaloneClassifier(
            self.num_buckets, self.embed_dim, self.hidden_widths, self.num_classes,
            self.num_dense_features, self.activation,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "num_buckets": self.num_buckets,
            "embed_dim": self.embed_dim,
            "hidden_widths": list(self.hidden_widths),
            "num_classes": self.num_classes,
            "num_dense_features": self.num_dense_features,
            "activation": self.activation,
            "features": self.features.to_dict(),
            "labels": list(self.labels),
            "ta_widths": list(self.ta_widths),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ExtractedConfig:
        if data.get("format") != FORMAT:
            raise ValueError(f"{source}: format {data.get('format')!r} is not {FORMAT!r}")
        features = dict(data["features"])
        features["word_ngrams"] = tuple(features["word_ngrams"])
        features["char_ngrams"] = tuple(features["char_ngrams"])
        return cls(
            num_buckets=int(data["num_buckets"]),
            embed_dim=int(data["embed_dim"]),
            hidden_widths=tuple(int(w) for w in data["hidden_widths"]),
            num_classes=int(data["num_classes"]),
            num_dense_features=int(data["num_dense_features"]),
            activation=str(data["activation"]),
            features=FeaturizerConfig(**features),
            labels=tuple(data.get("labels", ())),
            ta_widths=tuple(int(w) for w in data.get("ta_widths", ())),
            metadata=dict(data.get("metadata", {})),
        )


def extracted_config(config: ClassifierConfig, widths: Widths, labels: tuple[str, ...] = ()) -> ExtractedConfig:
    """The standalone config for `widths` of a nested model with `config`."""
    return ExtractedConfig(
        num_buckets=config.features.num_buckets,
        embed_dim=config.embed_dim,
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
    standalone = extracted_config(model.config, widths).build()
    state: dict[str, torch.Tensor] = {
        "embedding.weight": model.embedding.weight.detach().clone(),
        "idf": model.idf.detach().clone(),
    }
    in_width = model.config.input_dim
    for i, (block, width) in enumerate(zip(model.blocks, widths, strict=True)):
        for name, tensor in block.sliced_state(in_width, width).items():
            state[f"blocks.{i}.{name}"] = tensor
        in_width = width
    for name, tensor in model.head.sliced_state(in_width, model.config.num_classes).items():
        state[f"head.{name}"] = tensor
    standalone.load_state_dict(state, strict=True)
    return standalone.eval()


def expected_param_count(config: ClassifierConfig, widths: Widths) -> int:
    """Parameters a standalone model at `widths` must have (trainable ones; the IDF buffer is not counted)."""
    total = config.features.num_buckets * config.embed_dim
    in_width = config.input_dim
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
    """Load a saved standalone model (no pickle: safetensors + JSON)."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {directory} is not a saved matta model")
    config = ExtractedConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
    model = config.build()
    model.load_state_dict(load_file(str(weights_path)), strict=True)
    return model.eval(), config


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    path.rmdir()
