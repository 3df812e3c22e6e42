"""The classifier family's part of the run config: its ``model:`` section and how it reads ``widths``.

Importable without torch: every pipeline task reads its config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, TypeAdapter, model_validator

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
        )


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
