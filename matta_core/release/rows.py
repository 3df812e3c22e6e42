"""The labelled test rows every model of a gate is scored on: texts and gold label *names*.

Names, not ids: a champion from an older run may number its labels differently; a label name means the same in
every run of a data set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EvalRows:
    """Texts with their gold label names, in a fixed order."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels: one label per text")
        if not self.texts:
            raise ValueError("no test rows: the gate needs at least one labelled row")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def content_hash(self) -> str:
        """sha256 of the rows (texts and labels, in order): proves two gates used the same rows."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(text.encode())
            digest.update(b"\x1f")
            digest.update(label.encode())
            digest.update(b"\x1e")
        return digest.hexdigest()

    @classmethod
    def from_ids(cls, texts: Sequence[str], label_ids: Sequence[int], label_names: Sequence[str]) -> EvalRows:
        """Rows from integer labels and the name of each id."""
        names = list(label_names)
        bad = [int(i) for i in label_ids if not 0 <= int(i) < len(names)]
        if bad:
            raise ValueError(f"label ids {bad[:5]} are outside 0..{len(names) - 1} (the {len(names)} label names)")
        return cls(tuple(str(t) for t in texts), tuple(names[int(i)] for i in label_ids))
