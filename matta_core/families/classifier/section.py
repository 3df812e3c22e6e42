"""The classifier family's part of the run config: its ``model:`` section and how it reads ``widths``.

Importable without torch: every pipeline task reads its config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, TypeAdapter, field_validator, model_validator

from matta_core.config_base import Section
from matta_core.families.classifier.embedding_nesting import check_nested_embedding

if TYPE_CHECKING:
    from matta_core.families.classifier.config import ClassifierConfig


class ModelSection(Section):
    hidden_widths: list[int] = Field(default_factory=lambda: [1024])
    student_widths: list[int] = Field(default_factory=lambda: [64])
    embed_dim: int = Field(128, gt=0)
    # Nest the embedding (None: every width reads all embed_dim dims): see ClassifierConfig.embed_dim_for.
    student_embed_dim: int | None = Field(None, gt=0)
    min_embed_dim: int = Field(8, gt=0)
    num_buckets: int = Field(2**18, ge=2)
    min_width: int = Field(8, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    # Warm start: the nested model's prefix slice starts from a saved standalone model (the MatTA paper derives the TA
    # from the production Student), e.g. models:/matta-banking77-xs@champion. See `parse_init_from` for the forms and
    # families/classifier/warm_start.py for what is copied where. None: random initialisation.
    init_from: str | None = None

    @field_validator("init_from")
    @classmethod
    def _init_from_form(cls, value: str | None) -> str | None:
        if value is not None:
            parse_init_from(value)
        return value

    @model_validator(mode="after")
    def _embedding_nests(self) -> ModelSection:
        if self.student_embed_dim is not None:  # errors under model, not under the widths that read it
            check_nested_embedding(self.embed_dim, self.student_embed_dim, self.min_embed_dim, self.hidden_widths[0],
                                   self.student_widths[0])
        return self

    def classifier_config(self, num_classes: int) -> ClassifierConfig:
        from matta_core.families.classifier.config import ClassifierConfig
        from matta_core.features.hashing import FeaturizerConfig

        return ClassifierConfig(
            num_classes=num_classes,
            hidden_widths=tuple(self.hidden_widths),
            student_widths=tuple(self.student_widths),
            embed_dim=self.embed_dim,
            student_embed_dim=self.student_embed_dim,
            min_embed_dim=self.min_embed_dim,
            min_width=self.min_width,
            dropout=self.dropout,
            features=FeaturizerConfig(self.num_buckets, tuple(self.word_ngrams), tuple(self.char_ngrams)),
            init_from=self.init_from,
        )


#: ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` (MLflow's registered-model URIs, alias or version).
_REGISTERED = re.compile(r"^models:/(?P<name>[^/@\s]+)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[1-9][0-9]*))$")
#: Folder URIs the storage layer reads (a plain path is a local folder).
_FOLDER_SCHEMES = ("gs://", "file://")
INIT_FROM_FORMS = ("models:/<name>@<alias>, models:/<name>/<version>, or a folder holding a saved standalone model "
                   "(config.json + model.safetensors: a local path or a gs:// URI)")


@dataclass(frozen=True)
class InitFrom:
    """A parsed ``model.init_from``: a registered model version (by alias or number) or a saved model's folder."""

    uri: str
    registered_model: str | None = None
    alias: str | None = None
    version: str | None = None

    @property
    def registered(self) -> bool:
        return self.registered_model is not None


def parse_init_from(uri: str) -> InitFrom:
    """Parse a ``model.init_from`` value; ValueError saying which forms are allowed."""
    if not uri or uri != uri.strip():
        raise ValueError(f"init_from {uri!r} must be a non-empty URI without surrounding spaces; allowed: "
                         f"{INIT_FROM_FORMS}")
    if uri.startswith("models:"):
        match = _REGISTERED.match(uri)
        if match is None:
            raise ValueError(f"init_from {uri!r} is not a registered model version; allowed: {INIT_FROM_FORMS} "
                             "(e.g. models:/matta-banking77-xs@champion or models:/matta-banking77-xs/3)")
        return InitFrom(uri, match["name"], match["alias"], match["version"])
    if "://" in uri and not uri.startswith(_FOLDER_SCHEMES):
        raise ValueError(f"init_from {uri!r}: scheme {uri.split('://')[0]!r} is not supported; allowed: "
                         f"{INIT_FROM_FORMS}")
    return InitFrom(uri)


def resolve_widths(widths: Any) -> list[list[int]]:
    """Classifier widths: per-layer ints (errors under widths.<entry>.<layer>, as pydantic words them)."""
    return TypeAdapter(list[list[int]]).validate_python(widths)


def check_widths(model: ModelSection, widths: list[Any]) -> None:
    """Every entry of `widths` must fit the TA of `model` (ValueError naming the entry and what is allowed)."""
    from matta_core.nested.widths import WidthError

    config = model.classifier_config(num_classes=2)  # the class count does not affect widths
    for i, entry in enumerate(widths):
        try:
            config.sub_config(tuple(entry))
        except WidthError as error:
            raise ValueError(f"entry {i} {entry}: {error}") from None
