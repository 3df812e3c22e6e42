"""The Teacher interface: what every Teacher (pretrained encoder + head, causal LM, user model) offers.

A Teacher turns texts into the outputs a Student is distilled from. The cache (`matta_core.teachers.cache`) keys
those outputs on `fingerprint()` and `output_spec`, so both must be cheap to compute without loading the model:
a cache hit should never pay for a model load.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

OutputKind = Literal["class_logits", "topk_logits", "embeddings"]
OUTPUT_KINDS: tuple[str, ...] = ("class_logits", "topk_logits", "embeddings")


@dataclass(frozen=True)
class OutputSpec:
    """What a Teacher's `predict` returns, per row.

    - ``class_logits``: ``{"logits": float32 [n, num_classes]}``.
    - ``topk_logits``: ``{"topk_values": float32 [n, max_length, k], "topk_indices": int64 [n, max_length, k],
      "input_ids": int64 [n, max_length], "lengths": int64 [n]}`` (see `CausalLMTeacher` for the padding rule).
    - ``embeddings``: ``{"embeddings": float32 [n, dim]}`` (an encoder's output, cached like a Teacher's so a
      head can be refitted without re-encoding).
    """

    kind: OutputKind
    num_classes: int | None = None
    k: int | None = None
    vocab_size: int | None = None
    max_length: int | None = None
    dim: int | None = None

    def __post_init__(self) -> None:
        required = {
            "class_logits": ("num_classes",),
            "topk_logits": ("k", "vocab_size", "max_length"),
            "embeddings": ("dim",),
        }
        if self.kind not in required:
            raise ValueError(f"OutputSpec.kind={self.kind!r} is not one of {OUTPUT_KINDS}")
        for field in required[self.kind]:
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"OutputSpec(kind={self.kind!r}) needs a positive int {field}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON data, without unset fields (so adding a field later keeps old keys stable)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputSpec:
        """Inverse of `to_dict`."""
        return cls(**data)

    def row_shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Per-row shape and dtype of every array `predict` returns (used to validate Teacher outputs)."""
        f32, i64 = np.dtype(np.float32), np.dtype(np.int64)
        if self.kind == "class_logits":
            return {"logits": ((int(self.num_classes or 0),), f32)}
        if self.kind == "embeddings":
            return {"embeddings": ((int(self.dim or 0),), f32)}
        t, k = int(self.max_length or 0), int(self.k or 0)  # validated positive in __post_init__
        return {
            "topk_values": ((t, k), f32),
            "topk_indices": ((t, k), i64),
            "input_ids": ((t,), i64),
            "lengths": ((), i64),
        }


class Teacher(ABC):
    """A model whose outputs Students are distilled from.

    Implementations load their model lazily (on the first `predict`/`fit`), so that `fingerprint()` and
    `output_spec` -- all a cache hit needs -- stay cheap.
    """

    #: Short, human-readable name (logs, progress bars, manifests). Not part of the identity.
    name: str

    @abstractmethod
    def fingerprint(self) -> str:
        """Hex sha256 identifying weights + config + fitted head: it changes when any of them changes."""

    @property
    @abstractmethod
    def output_spec(self) -> OutputSpec:
        """What `predict` returns."""

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> None:  # noqa: B027
        """Fit the trainable head on a training split; a no-op for Teachers without one."""

    @abstractmethod
    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Outputs for `texts`, one row per text, laid out as `output_spec` describes."""


def check_outputs(outputs: dict[str, np.ndarray], spec: OutputSpec, n_rows: int, where: str) -> None:
    """Raise a ValueError naming `where` if `outputs` do not match `spec` for `n_rows` rows."""
    expected = spec.row_shapes()
    if set(outputs) != set(expected):
        raise ValueError(f"{where}: arrays {sorted(outputs)} do not match {spec.kind} arrays {sorted(expected)}")
    for name, (row_shape, dtype) in expected.items():
        arr = outputs[name]
        if arr.shape != (n_rows, *row_shape) or arr.dtype != dtype:
            raise ValueError(
                f"{where}: array {name!r} is {arr.dtype}{list(arr.shape)}, expected {dtype}{[n_rows, *row_shape]}"
            )
