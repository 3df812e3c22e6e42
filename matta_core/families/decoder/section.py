"""The decoder family's part of the run config: its ``model:`` section, its defaults, and how it reads ``widths``
and its data.

Importable without torch: every pipeline task reads its config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from matta_core.config_base import Section

if TYPE_CHECKING:
    from matta_core.data.section import DataSection
    from matta_core.families.decoder.config import DecoderConfig
    from matta_core.sections import TeacherSection

_CAUSAL_LM_MAX_LENGTH = 64  # `CausalLMTeacher`'s default max_length, for specs that leave it out


class DecoderSection(Section):
    """The causal-LM family's model section (``task: causal_lm``): a `DecoderConfig` less its vocabulary, which
    is the Teacher's (Students read the token ids the Teacher cached). Per-layer fields take one int for every
    block or one per block; left out, they default as `DecoderConfig` says (FFN 4 * d_model, Student FFN a quarter
    of it, Student heads half of n_heads)."""

    # None: the Teacher's max_length, the longest sequence its cache holds.
    n_positions: int | None = Field(None, gt=0)
    d_model: int = Field(128, gt=0)
    n_layers: int = Field(4, gt=0)
    n_heads: int = Field(4, gt=0)
    head_dim: int | None = Field(None, gt=0)
    ffn_widths: int | list[int] | None = None
    student_ffn_widths: int | list[int] | None = None
    student_heads: int | list[int] | None = None
    min_ffn_width: int = Field(8, gt=0)
    min_heads: int = Field(1, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    activation: Literal["gelu", "gelu_tanh"] = "gelu"

    @model_validator(mode="after")
    def _shape_is_valid(self) -> DecoderSection:
        self.decoder_config(vocab_size=1, n_positions=1)  # the shape checks; vocabulary and length come later
        return self

    def decoder_config(self, vocab_size: int, n_positions: int | None = None) -> DecoderConfig:
        """The decoder for a Teacher with `vocab_size` tokens; `n_positions` applies when the section sets none."""
        from matta_core.families.decoder.config import DecoderConfig

        positions = self.n_positions or n_positions
        if positions is None:
            raise ValueError("model.n_positions is not set and no Teacher max_length was given to default it to")

        def per_layer(value: int | list[int] | None) -> int | tuple[int, ...] | None:
            return tuple(value) if isinstance(value, list) else value

        return DecoderConfig(
            vocab_size=vocab_size,
            n_positions=positions,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            head_dim=self.head_dim,
            ffn_widths=per_layer(self.ffn_widths),
            student_ffn_widths=per_layer(self.student_ffn_widths),
            student_heads=per_layer(self.student_heads),
            min_ffn_width=self.min_ffn_width,
            min_heads=self.min_heads,
            dropout=self.dropout,
            activation=self.activation,
        )


def config_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The field defaults of the run config describe the classifier. A causal_lm run that leaves out the model
    section or the widths gets the decoder's defaults instead (its TA and Student), and training the LM defaults
    (`matta_core.families.decoder.train_config`: lr, batch size, tau = 1), written into the config so the steps
    receive them. Its widths are sampled each step (``train.widths_per_step``): an LM head per width costs a
    full-vocabulary projection."""
    from matta_core.families.decoder.loss import LM_LOSS_CONFIG
    from matta_core.families.decoder.train_config import LM_BATCH_SIZE, LM_LR

    train = data.get("train", {})
    if isinstance(train, dict):
        loss = train.get("loss", {})
        if isinstance(loss, dict):
            loss = {"temperature": LM_LOSS_CONFIG.temperature, **loss}
        train = {"lr": LM_LR, "batch_size": LM_BATCH_SIZE, "widths_per_step": "sampled", **train, "loss": loss}
    return {"model": {}, "widths": ["ta", "student"], **data, "train": train}


def check_data(data: DataSection, registered: list[str]) -> None:
    """A causal LM reads a registered text corpus (`registered`) or a text file, and takes no labels or test file."""
    from matta_core.data import DATASETS
    from matta_core.families.decoder.text_data import TEXT_FORMATS

    if data.source not in DATASETS and Path(data.source.split("?", 1)[0]).suffix.lower() not in TEXT_FORMATS:
        raise ValueError(f"source {data.source!r}: task 'causal_lm' reads a registered text corpus "
                         f"({', '.join(registered)}) or a {'/'.join(TEXT_FORMATS)} file")
    unused = [f for f in ("test_source", "label_column") if getattr(data, f) is not None]
    if unused:
        raise ValueError(f"{unused} do not apply to task 'causal_lm' (a text corpus has no labels, and its "
                         "test split is hashed out of the corpus): remove them")


def check_model(model: DecoderSection, teacher: TeacherSection | None) -> None:
    """The Students read the Teacher's sequences whole: n_positions, when set, must hold them."""
    if model.n_positions is None:
        return
    max_length = None if teacher is None else teacher.spec.get("max_length", _CAUSAL_LM_MAX_LENGTH)
    if max_length is not None and model.n_positions < max_length:
        raise ValueError(f"n_positions {model.n_positions} is shorter than the Teacher's max_length "
                         f"{max_length}: the Students read the Teacher's sequences whole; raise n_positions "
                         "or leave it out (it defaults to max_length)")


def resolve_widths(model: DecoderSection, widths: Any) -> list[list[list[int]]]:
    """One [ffn_width, n_heads] pair per block for each entry ("ta", "student", {"ffn": ..., "heads": ...} or
    explicit pairs), each checked against the TA and none repeated."""
    if not isinstance(widths, list):
        raise ValueError(f"give a list of widths specs, got {widths!r}")
    from matta_core.families.decoder.widths import resolve_widths as resolve_one
    from matta_core.nested.widths import WidthError

    config = model.decoder_config(vocab_size=1, n_positions=1)  # the vocabulary does not affect widths
    pairs: list[list[list[int]]] = []
    for i, spec in enumerate(widths):
        try:
            resolved = [list(pair) for pair in resolve_one(config, spec)]
        except (WidthError, TypeError) as error:
            raise ValueError(f"entry {i} {spec!r}: {error}") from None
        if resolved in pairs:
            raise ValueError(f"entry {i} {spec!r} is the same sub-model as entry {pairs.index(resolved)}")
        pairs.append(resolved)
    return pairs
