"""The declared shape of a labelled text data set: which columns hold the text, the label and numeric features."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataSchema:
    """Which source columns `prepare_dataset` reads, and which labels are allowed.

    Args:
        text_column: column holding the input text.
        label_column: column holding the class label (read as a string; integer labels become "0", "1", ...).
        feature_columns: extra numeric columns carried into the prepared splits as float64.
        labels: the allowed label names; None allows any label seen in the data. A row with another label is
            quarantined as `unknown_label`. Declared labels that never occur still get an index in the label
            map, so a model head keeps its size when a rare class is missing from one data drop.
    """

    text_column: str = "text"
    label_column: str = "label"
    feature_columns: tuple[str, ...] = ()
    labels: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        # Accept lists (from JSON/YAML/CLI) but store tuples, so the schema stays hashable and immutable.
        object.__setattr__(self, "feature_columns", tuple(self.feature_columns))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(_label_str(x) for x in self.labels))
        if not self.text_column or not self.label_column:
            raise ValueError("DataSchema: text_column and label_column must be non-empty column names.")
        if self.text_column == self.label_column:
            raise ValueError(f"DataSchema: text_column and label_column are both {self.text_column!r}.")
        clash = {self.text_column, self.label_column} & set(self.feature_columns)
        if clash:
            raise ValueError(f"DataSchema: feature_columns repeat the text/label column(s) {sorted(clash)}.")
        _no_repeats("feature_columns", self.feature_columns)
        reserved = {"row_id", "text", "label", "label_name"} & set(self.feature_columns)
        if reserved:
            raise ValueError(
                f"DataSchema: feature column name(s) {sorted(reserved)} are reserved for the prepared splits "
                "(row_id, text, label, label_name); rename them in the source."
            )
        if self.labels is not None:
            _no_repeats("labels", self.labels)
            if not self.labels:
                raise ValueError("DataSchema: labels=() allows no label at all; use None to allow any label.")

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns every source file must have."""
        return (self.text_column, self.label_column, *self.feature_columns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used in manifest.json and in the content hash)."""
        return {
            "text_column": self.text_column,
            "label_column": self.label_column,
            "feature_columns": list(self.feature_columns),
            "labels": None if self.labels is None else list(self.labels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSchema:
        """Inverse of `to_dict`."""
        labels = data.get("labels")
        return cls(
            text_column=data["text_column"],
            label_column=data["label_column"],
            feature_columns=tuple(data.get("feature_columns", ())),
            labels=None if labels is None else tuple(labels),
        )


def _label_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _no_repeats(what: str, values: Iterable[str]) -> None:
    repeats = sorted(v for v, n in Counter(values).items() if n > 1)
    if repeats:
        raise ValueError(f"DataSchema: {what} lists {repeats} more than once.")
