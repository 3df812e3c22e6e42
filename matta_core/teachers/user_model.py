"""A user's own classifier as a Teacher: safetensors weights + a JSON config, or an MLflow model URI.

`SafetensorsTeacher` reads a folder (local path, file:// or gs://) holding two files:

``model.safetensors``
    The weights, PyTorch ``nn.Linear`` layout: ``weight`` [out, in], ``bias`` [out]; any float dtype.
``config.json``
    ::

        {
          "format": "matta.safetensors_classifier",
          "version": 1,
          "name": "my-intent-mlp",                      # optional, for logs and manifests
          "num_classes": 77,
          "features": {"kind": "minilm"},               # or {"kind": "hashed_ngrams", "dim": 4096,
                                                        #     "ngram_range": [1, 2], "lowercase": true}
          "layers": [                                   # applied in order: x @ weight.T + bias, then activation
            {"weight": "fc1.weight", "bias": "fc1.bias", "activation": "relu"},
            {"weight": "fc2.weight", "bias": "fc2.bias"}  # activation defaults to "none"
          ],
          "label_names": ["activate_my_card", "..."]    # optional
        }

    Activations: ``none``, ``relu``, ``tanh``, ``sigmoid``. The first layer's ``in`` must equal the features' dim
    (384 for MiniLM), each layer's ``in`` the previous ``out``, the last ``out`` ``num_classes``.

Outputs: ``{"logits": float32 [n, num_classes]}`` (whatever the last layer computes; nothing is fitted here, so
`fit` is a no-op). No pickle: safetensors and JSON only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from matta_core import storage
from matta_core.teachers.base import OutputSpec, Teacher
from matta_core.teachers.features import Featurizer, make_featurizer
from matta_core.teachers.fingerprint import sha256_arrays, sha256_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CLASSIFIER_FORMAT = "matta.safetensors_classifier"
MLFLOW_PIN = "mlflow==3.17.2"

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


class SafetensorsTeacher(Teacher):
    """A feed-forward classifier (linear or MLP) over MiniLM or hashed n-gram features; see the module doc."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict[str, Any], *, source: str = "<in memory>") -> None:
        self.config = json.loads(json.dumps(config))  # a private, JSON-clean copy: it is part of the identity
        self.source = source
        self.name = str(self.config.get("name", "safetensors"))
        self.tensors = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        self.features: Featurizer = _validate(self.config, self.tensors, source)
        self._layers = [
            (self.tensors[layer["weight"]], self.tensors[layer["bias"]], ACTIVATIONS[layer.get("activation", "none")])
            for layer in self.config["layers"]
        ]

    @classmethod
    def load(cls, directory: str) -> SafetensorsTeacher:
        """Read ``config.json`` + ``model.safetensors`` from `directory` (a URI)."""
        config_uri = storage.join(directory, CONFIG_NAME)
        weights_uri = storage.join(directory, WEIGHTS_NAME)
        try:
            config = json.loads(storage.read_text(config_uri))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{config_uri}: not valid JSON ({exc})") from exc
        return cls(st_load(storage.read_bytes(weights_uri)), config, source=directory)

    def save(self, directory: str) -> None:
        """Write the classifier in the format `load` reads."""
        storage.write_bytes(storage.join(directory, WEIGHTS_NAME), st_save(self.tensors))
        storage.write_text(
            storage.join(directory, CONFIG_NAME), json.dumps(self.config, indent=2, sort_keys=True) + "\n"
        )

    def fingerprint(self) -> str:
        """Weights (as float32 arrays) + config + the featuriser's identity (e.g. the MiniLM encoder's hash)."""
        return sha256_json(
            {
                "kind": "safetensors",
                "arrays": sha256_arrays(self.tensors),
                "config": self.config,
                "features": self.features.identity(),
            }
        )

    @property
    def output_spec(self) -> OutputSpec:
        return OutputSpec("class_logits", num_classes=int(self.config["num_classes"]))

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """``{"logits": float32 [n, num_classes]}``."""
        x = np.asarray(self.features(list(texts)), dtype=np.float32)
        for weight, bias, activation in self._layers:
            x = activation(x @ weight.T + bias)
        return {"logits": np.ascontiguousarray(x, dtype=np.float32)}


def _validate(config: dict[str, Any], tensors: dict[str, np.ndarray], where: str) -> Featurizer:
    """Check a classifier config against its tensors; return its featuriser. Errors name the field."""
    if config.get("format") != CLASSIFIER_FORMAT:
        raise ValueError(f"{where}: config format is {config.get('format')!r}, expected {CLASSIFIER_FORMAT!r}")
    num_classes = config.get("num_classes")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"{where}: config num_classes must be an int >= 2, got {num_classes!r}")
    if not isinstance(config.get("features"), dict):
        raise ValueError(f"{where}: config features must be an object like {{'kind': 'minilm'}}")
    features = make_featurizer(config["features"], where)
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{where}: config layers must be a non-empty list of {{weight, bias, activation}}")
    width = features.dim
    for i, layer in enumerate(layers):
        here = f"{where}: layers[{i}]"
        if not isinstance(layer, dict):
            raise ValueError(f"{here} must be an object with weight, bias and optional activation")
        activation = layer.get("activation", "none")
        if activation not in ACTIVATIONS:
            raise ValueError(f"{here}.activation is {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        for field in ("weight", "bias"):
            if layer.get(field) not in tensors:
                raise ValueError(f"{here}.{field} {layer.get(field)!r} is not a tensor in the file ({sorted(tensors)})")
        w, b = tensors[layer["weight"]], tensors[layer["bias"]]
        if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
            raise ValueError(
                f"{here}: weight {list(w.shape)} / bias {list(b.shape)} do not fit input width {width} "
                f"(expected weight [out, {width}], bias [out])"
            )
        width = w.shape[0]
    if width != num_classes:
        raise ValueError(f"{where}: last layer outputs {width} values, config num_classes is {num_classes}")
    return features


class MLflowTeacher(Teacher):
    """A classifier logged to MLflow (any pyfunc flavour), loaded from ``models:/...`` or ``runs:/...``.

    Its pyfunc ``predict`` gets a DataFrame with one text column (`input_column`) and must return
    ``[n, num_classes]`` scores (logits). mlflow is imported lazily: only this Teacher needs it.

    The fingerprint names immutable things: ``runs:/<run>/<path>`` as is; ``models:/<name>/<version>`` and
    ``models:/<name>@<alias>`` resolved to (name, version, run id, source) -- an alias is resolved once and the
    Teacher then loads that pinned version, so the fingerprint and the weights used always agree.
    """

    def __init__(
        self, model_uri: str, *, num_classes: int, input_column: str = "text", name: str | None = None
    ) -> None:
        if not re.match(r"^(models|runs):/", model_uri):
            raise ValueError(f"MLflowTeacher needs a models:/... or runs:/... URI, got {model_uri!r}")
        self.model_uri = model_uri
        self.num_classes = int(num_classes)
        self.input_column = input_column
        self.name = name or model_uri
        self._identity: dict[str, Any] | None = None
        self._model: Any = None

    @staticmethod
    def _mlflow() -> Any:
        try:
            import mlflow
        except ImportError as exc:
            raise ImportError(f"MLflowTeacher needs mlflow, which is not installed: install {MLFLOW_PIN}") from exc
        return mlflow

    def _resolve(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = _resolve_model_uri(self._mlflow(), self.model_uri)
        return self._identity

    def fingerprint(self) -> str:
        return sha256_json({"kind": "mlflow", "model": self._resolve(), "input_column": self.input_column})

    @property
    def output_spec(self) -> OutputSpec:
        return OutputSpec("class_logits", num_classes=self.num_classes)

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """``{"logits": float32 [n, num_classes]}`` from the pyfunc model's predict."""
        import pandas as pd

        if self._model is None:
            self._model = self._mlflow().pyfunc.load_model(self._resolve()["load_uri"])
        raw = self._model.predict(pd.DataFrame({self.input_column: list(texts)}))
        scores = np.asarray(raw.to_numpy() if hasattr(raw, "to_numpy") else raw, dtype=np.float32)
        if scores.shape != (len(texts), self.num_classes):
            raise ValueError(
                f"{self.model_uri}: predict returned shape {list(scores.shape)}, "
                f"expected [{len(texts)}, {self.num_classes}]"
            )
        return {"logits": np.ascontiguousarray(scores)}


def _resolve_model_uri(mlflow: Any, uri: str) -> dict[str, Any]:
    """Immutable identity of an MLflow model URI plus the URI to load it by (pinned to a version)."""
    if uri.startswith("runs:/"):
        return {"uri": uri, "load_uri": uri}
    ref = uri[len("models:/") :]
    client = mlflow.MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    elif "/" in ref:
        name, version = ref.split("/", 1)
        if not version.isdigit():
            raise ValueError(f"{uri}: pin a version number or an alias (models:/name/3 or models:/name@champion)")
        mv = client.get_model_version(name, version)
    else:  # models:/<model id> -- an MLflow 3 LoggedModel, immutable by id
        return {"uri": uri, "model_id": ref, "load_uri": uri}
    return {
        "uri": uri,
        "name": mv.name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "source": mv.source,
        "load_uri": f"models:/{mv.name}/{mv.version}",
    }
