"""Configuration of the nested text/tabular classifier family."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from matta_core.families.classifier.embedding_nesting import check_nested_embedding, nested_embed_dims
from matta_core.features.hashing import FeaturizerConfig
from matta_core.nested.widths import Widths, WidthSlot, validate_widths


@dataclass(frozen=True)
class ClassifierConfig:
    """A hashed n-gram embedding bag (plus optional dense columns) -> nested MLP blocks -> class head.

    `hidden_widths` are the TA's per-layer widths (the full model); `student_widths` the declared Student, a
    prefix slice of every layer. Defaults follow what worked on Banking77 (see README, Results): a 2^18-bucket,
    128-dim bag, one hidden layer, a 1024-wide TA and a 64-wide Student.
    """

    num_classes: int
    hidden_widths: tuple[int, ...] = (1024,)
    student_widths: tuple[int, ...] = (64,)
    embed_dim: int = 128
    num_dense_features: int = 0
    # The narrowest width a sub-model may use; it also bounds the sandwich sampler from below.
    min_width: int = 8
    dropout: float = 0.0
    activation: str = "relu"
    features: FeaturizerConfig = field(default_factory=FeaturizerConfig)
    # Nest the embedding too (None: every width reads all `embed_dim` dims of an n-gram's row). The Student reads
    # the first `student_embed_dim` dims and any other width the dims `embed_dim_for` gives it, so a narrow model
    # ships a table of narrow rows. Text-only models (no dense columns, which sit after the embedding dims).
    student_embed_dim: int | None = None
    # The fewest embedding dims a sub-model reads when the embedding nests.
    min_embed_dim: int = 8
    # The saved standalone model whose weights the nested model's prefix slice started from (`warm_start`): the
    # train step records the version it resolved (``models:/<name>/<version>``, never an alias, which moves), so a
    # checkpoint of a run that started elsewhere is refused. None: random initialisation (and left out of `to_dict`,
    # so configs saved before warm starts existed still compare equal).
    init_from: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_widths", tuple(int(w) for w in self.hidden_widths))
        object.__setattr__(self, "student_widths", tuple(int(w) for w in self.student_widths))
        if isinstance(self.features, dict):
            object.__setattr__(self, "features", FeaturizerConfig(**self.features))
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if not self.hidden_widths:
            raise ValueError("hidden_widths must name at least one hidden layer")
        if self.embed_dim < 1 or self.num_dense_features < 0:
            raise ValueError(f"embed_dim must be >= 1 and num_dense_features >= 0, got "
                             f"{self.embed_dim} and {self.num_dense_features}")
        if not 1 <= self.min_width <= min(self.hidden_widths):
            raise ValueError(f"min_width must be in 1..{min(self.hidden_widths)}, got {self.min_width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} unknown; allowed: {sorted(ACTIVATIONS)}")
        validate_widths(self.width_slots(), self.student_widths)
        if self.student_embed_dim is not None:
            check_nested_embedding(self.embed_dim, self.student_embed_dim, self.min_embed_dim, self.hidden_widths[0],
                                   self.student_widths[0], self.num_dense_features)

    @property
    def input_dim(self) -> int:
        return self.embed_dim + self.num_dense_features

    @property
    def ta_widths(self) -> Widths:
        return self.hidden_widths

    def embed_dim_for(self, widths: Widths) -> int:
        """The embedding dims (a prefix of every row) a sub-model at `widths` reads: all `embed_dim` unless the
        embedding nests. Nested, they follow the first hidden layer's width `w`: log-linear between the Student
        (`student_embed_dim` at its width) and the TA (`embed_dim` at its width), proportional to `w` below the
        Student, and never under `min_embed_dim`."""
        if self.student_embed_dim is None:
            return self.embed_dim
        return nested_embed_dims(widths[0], self.embed_dim, self.student_embed_dim, self.min_embed_dim,
                                 self.hidden_widths[0], self.student_widths[0])

    def width_slots(self) -> list[WidthSlot]:
        """The nestable dimensions: one per hidden layer, named as in the module tree."""
        return [WidthSlot(f"blocks.{i}", w, self.min_width) for i, w in enumerate(self.hidden_widths)]

    def sub_config(self, widths: Widths) -> ClassifierConfig:
        """The config of the standalone model that keeps `widths` (its TA and Student are that size)."""
        widths = validate_widths(self.width_slots(), widths)
        dims = self.embed_dim_for(widths)
        return replace(self, hidden_widths=widths, student_widths=widths, min_width=min(self.min_width, *widths),
                       embed_dim=dims, student_embed_dim=None, min_embed_dim=min(self.min_embed_dim, dims),
                       init_from=None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden_widths"] = list(self.hidden_widths)
        data["student_widths"] = list(self.student_widths)
        data["features"] = self.features.to_dict()
        if data["init_from"] is None:
            del data["init_from"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown classifier config fields {unknown}; allowed: {sorted(known)}")
        data = dict(data)
        if isinstance(data.get("features"), dict):
            features = dict(data["features"])
            for key in ("word_ngrams", "char_ngrams"):
                if key in features:
                    features[key] = tuple(features[key])
            data["features"] = FeaturizerConfig(**features)
        return cls(**data)


ACTIVATIONS = ("relu", "gelu")
