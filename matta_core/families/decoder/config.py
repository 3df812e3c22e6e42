"""Configuration of the nested decoder (GPT-2 style causal LM) family, and its per-layer widths.

A decoder sub-model is one `LayerWidth(ffn, heads)` per block: the FFN hidden width and the number of attention
heads that block keeps. The TA keeps every block's maxima, the Student the declared smaller pairs, and any pairs in
between are Mix'n'Match sub-models. `d_model` is not nested: the token embedding is tied to the LM head, and a
shared residual width is what lets every sub-model reuse that one table.

For the generic width machinery (`validate_widths`, `sample_widths`) the pairs flatten to two slots per block,
named `blocks.<i>.ffn` and `blocks.<i>.heads` as in the module tree, so errors name the exact layer and dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

from matta_core.nested.widths import WidthError, Widths, WidthSlot, validate_widths


class LayerWidth(NamedTuple):
    """What one block keeps: its FFN hidden width and its number of attention heads."""

    ffn: int
    heads: int


DecoderWidths = tuple[LayerWidth, ...]

ACTIVATIONS = ("gelu", "gelu_tanh")


@dataclass(frozen=True)
class DecoderConfig:
    """A GPT-2 style decoder whose FFN widths and head counts are nested per block.

    `ffn_widths` are the TA's per-block FFN hidden widths and `n_heads` its head count in every block;
    `student_ffn_widths` / `student_heads` the declared Student. Per-block fields accept one int (same for every
    block) or one value per block. Left out: FFN 4 * d_model (GPT-2), Student FFN a quarter of the TA's, Student
    heads half the TA's, `head_dim` d_model / n_heads.
    """

    vocab_size: int
    n_positions: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    head_dim: int | None = None
    ffn_widths: tuple[int, ...] | int | None = None
    student_ffn_widths: tuple[int, ...] | int | None = None
    student_heads: tuple[int, ...] | int | None = None
    # Lower bounds of every sub-model (and of the sandwich sampler).
    min_ffn_width: int = 8
    min_heads: int = 1
    dropout: float = 0.0
    activation: str = "gelu"
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_positions", "d_model", "n_layers", "n_heads", "min_ffn_width", "min_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"decoder config: {name} must be a positive integer, got {value!r}")
        if self.head_dim is None:
            if self.d_model % self.n_heads:
                divisors = [h for h in range(1, self.d_model + 1) if self.d_model % h == 0]
                raise ValueError(
                    f"decoder config: d_model {self.d_model} is not divisible by n_heads {self.n_heads}; "
                    f"pick n_heads among {divisors} or set head_dim explicitly"
                )
            object.__setattr__(self, "head_dim", self.d_model // self.n_heads)
        elif isinstance(self.head_dim, bool) or not isinstance(self.head_dim, int) or self.head_dim < 1:
            raise ValueError(f"decoder config: head_dim must be a positive integer, got {self.head_dim!r}")
        ffn = self._per_layer("ffn_widths", 4 * self.d_model)
        object.__setattr__(self, "ffn_widths", ffn)
        object.__setattr__(
            self,
            "student_ffn_widths",
            self._per_layer("student_ffn_widths", [max(self.min_ffn_width, w // 4) for w in ffn]),
        )
        object.__setattr__(
            self, "student_heads", self._per_layer("student_heads", max(self.min_heads, self.n_heads // 2))
        )
        if self.min_ffn_width > min(ffn):
            raise ValueError(
                f"decoder config: min_ffn_width {self.min_ffn_width} exceeds the narrowest TA FFN "
                f"width {min(ffn)}; allowed 1..{min(ffn)}"
            )
        if self.min_heads > self.n_heads:
            raise ValueError(f"decoder config: min_heads {self.min_heads} exceeds n_heads {self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"decoder config: dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"decoder config: activation {self.activation!r} unknown; allowed: {list(ACTIVATIONS)}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"decoder config: layer_norm_eps must be > 0, got {self.layer_norm_eps}")
        try:
            self.check_widths(self.student_widths)
        except WidthError as exc:
            raise WidthError(f"decoder config: the Student does not fit the TA: {exc}") from None

    def _per_layer(self, name: str, default: Any) -> tuple[int, ...]:
        value = getattr(self, name)
        value = default if value is None else value
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * self.n_layers
        value = tuple(value)
        if len(value) != self.n_layers:
            raise ValueError(
                f"decoder config: {name} has {len(value)} entries but n_layers is {self.n_layers}; "
                f"give one int, or one per layer"
            )
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(
                    f"decoder config: {name}[{i}] (layer blocks.{i}) must be a positive integer, got {v!r}"
                )
        return value

    @property
    def ta_widths(self) -> DecoderWidths:
        return tuple(LayerWidth(f, self.n_heads) for f in self._ints("ffn_widths"))

    @property
    def student_widths(self) -> DecoderWidths:
        pairs = zip(self._ints("student_ffn_widths"), self._ints("student_heads"), strict=True)
        return tuple(LayerWidth(f, h) for f, h in pairs)

    @property
    def resolved_head_dim(self) -> int:
        """`head_dim` after defaulting (always an int once the config exists)."""
        return int(self.head_dim)  # type: ignore[arg-type]

    def _ints(self, name: str) -> tuple[int, ...]:
        # Per-layer fields are normalised to tuples in __post_init__; this gives them their settled type.
        return tuple(getattr(self, name))

    def width_slots(self) -> list[WidthSlot]:
        """The nestable dimensions, two per block in module-tree order: `blocks.<i>.ffn`, `blocks.<i>.heads`."""
        slots = []
        for i, ffn in enumerate(self._ints("ffn_widths")):
            slots.append(WidthSlot(f"blocks.{i}.ffn", ffn, self.min_ffn_width))
            slots.append(WidthSlot(f"blocks.{i}.heads", self.n_heads, self.min_heads))
        return slots

    def check_widths(self, widths: Sequence[Sequence[int]]) -> DecoderWidths:
        """Return `widths` as `LayerWidth` pairs after checking them, or raise `WidthError` naming the layer."""
        if isinstance(widths, int | str | bytes) or not isinstance(widths, Sequence):
            raise WidthError(
                f"decoder widths must be a sequence of {self.n_layers} (ffn_width, n_heads) pairs, "
                f"one per layer; got {widths!r}"
            )
        if len(widths) != self.n_layers:
            raise WidthError(
                f"decoder widths has {len(widths)} layers but the model has {self.n_layers} "
                f"(blocks.0..blocks.{self.n_layers - 1}): give one (ffn_width, n_heads) pair per layer"
            )
        for i, pair in enumerate(widths):
            if isinstance(pair, int | str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise WidthError(f"layer blocks.{i}: widths entry {pair!r} is not an (ffn_width, n_heads) pair")
        return self.from_flat(validate_widths(self.width_slots(), [v for pair in widths for v in pair]))

    def from_flat(self, flat: Widths) -> DecoderWidths:
        """Pairs from a flat tuple in `width_slots()` order (what `sample_widths` returns)."""
        return tuple(LayerWidth(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("ffn_widths", "student_ffn_widths", "student_heads"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown decoder config fields {unknown}; allowed: {sorted(known)}")
        return cls(**data)


def flatten_widths(widths: DecoderWidths) -> Widths:
    """The flat tuple in `width_slots()` order: ffn, heads of block 0, then of block 1, ..."""
    return tuple(v for pair in widths for v in pair)
