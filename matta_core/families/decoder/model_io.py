"""Saving and loading the trained nested decoder (the TA with every sub-model inside): safetensors + JSON, no pickle.

The same folder layout as the classifier's nested model (`matta_core.families.classifier.model_io`), so the train step's
output reads alike for both families: ``model.safetensors`` + ``model_config.json`` (with a ``format`` marker
that tells the two apart).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from matta_core.families.decoder.config import DecoderConfig
from matta_core.families.decoder.model import NestedDecoder
from matta_core.nested.model_folder import CONFIG, WEIGHTS, write_model_folder

FORMAT = "matta.nested_decoder/v1"


def save_nested_decoder(model: NestedDecoder, directory: str | Path) -> Path:
    """Write the weights and config; each file lands whole (written beside, then renamed)."""
    return write_model_folder(model, {"format": FORMAT, **model.config.to_dict()}, directory,
                              metadata={"format": "pt", "matta_format": FORMAT})


def load_nested_decoder(directory: str | Path) -> NestedDecoder:
    """Rebuild a `NestedDecoder` saved by `save_nested_decoder`, in eval mode."""
    directory = Path(directory)
    for name in (WEIGHTS, CONFIG):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} is missing: {directory} is not a saved nested decoder")
    data = json.loads((directory / CONFIG).read_text())
    if data.pop("format", None) != FORMAT:
        raise ValueError(f"{directory / CONFIG}: not a nested decoder config (format {FORMAT!r} expected)")
    model = NestedDecoder(DecoderConfig.from_dict(data))
    model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
    return model.eval()
