"""Text identity and the deterministic train/validation(/test) split.

A row's split depends only on its normalised text and a salt: never on row order, file layout, machine or run, so
a row stays in the same split when a data drop grows, and a text never lands in two splits.
"""

from __future__ import annotations

import hashlib
from typing import Literal

SplitName = Literal["train", "validation", "test"]
SPLITS: tuple[str, ...] = ("train", "validation", "test")  # also the order of the content hash
DEFAULT_SALT = "matta-split-v1"
ROW_ID_HEX_CHARS = 16  # 64 bits: a collision among a million rows has odds of about 3e-8 (and is checked)


def normalise_text(text: str) -> str:
    """Collapse every run of whitespace (Unicode included) to one space and strip the ends.

    This is the text a prepared split stores and the text duplicates, leaks and row ids are judged on.
    """
    return " ".join(text.split())


def row_id(text: str) -> str:
    """Stable hex id of a text: the start of sha256 over its normalised form (unsalted, so ids match across runs)."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:ROW_ID_HEX_CHARS]


def split_point(text: str, salt: str) -> float:
    """A uniform number in [0, 1) drawn from the salted hash of the normalised text."""
    digest = hashlib.sha256(f"{salt}\x00{normalise_text(text)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(text: str, *, salt: str, val_fraction: float, test_fraction: float = 0.0) -> SplitName:
    """The split of `text`: test below `test_fraction`, then validation, else train.

    Pass test_fraction=0 when the source has its own test split.
    """
    point = split_point(text, salt)
    if point < test_fraction:
        return "test"
    if point < test_fraction + val_fraction:
        return "validation"
    return "train"


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Reject fractions that leave no room for training data."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}.")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training rows; keep it below 1."
        )
