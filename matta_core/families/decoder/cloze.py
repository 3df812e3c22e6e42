"""LAMBADA-style last-word cloze examples: given a passage without its final word, predict that word.

The target is a word, but models see tokens: the target's ids are tokens(passage) minus the tokens(context) prefix. That
subtraction is only right when the context's tokens are a prefix of the passage's (true for GPT-2/SmolLM2 byte-level
BPE, where the space belongs to the next word's token; false when a merge spans the word boundary or the tokenizer
appends an end token), so a passage where it fails is skipped and counted, never guessed. Scoring
(`matta_core.families.decoder.evaluate.cloze_accuracy`) asks for every target token to be the argmax at its position in
one teacher-forced pass over the passage, as LAMBADA accuracy is usually computed for GPT-2.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from matta_core.families.decoder.tokens import token_ids

SKIP_REASONS = ("too_short", "too_long", "prefix_mismatch")


@dataclass(frozen=True)
class ClozeExample:
    """One passage split into context and final word, with the passage's ids and where the target starts."""

    passage: str
    context: str
    target: str
    input_ids: tuple[int, ...]
    target_start: int  # index in input_ids of the target's first token; >= 1, so some context precedes it

    @property
    def target_ids(self) -> tuple[int, ...]:
        return self.input_ids[self.target_start :]


@dataclass
class ClozeSet:
    """The examples built, and how many passages were skipped per reason (`SKIP_REASONS`)."""

    examples: list[ClozeExample]
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[ClozeExample]:
        return iter(self.examples)

    def summary(self) -> dict[str, Any]:
        """Counts for a report: examples kept, skipped per reason, and target tokens (multi-token words)."""
        multi = sum(1 for e in self.examples if len(e.target_ids) > 1)
        return {"examples": len(self.examples), "multi_token_targets": multi, "skipped": dict(self.skipped)}


def build_cloze_examples(
    texts: Iterable[str],
    tokenizer: Any,
    *,
    min_words: int = 5,
    max_length: int | None = None,
    add_special_tokens: bool = True,
) -> ClozeSet:
    """Cloze examples from held-out passages (use the test split: the model must not have trained on them).

    Args:
        texts: passages; whitespace is normalised (words are split on whitespace and joined by one space).
        tokenizer: `encode(text, add_special_tokens=...)` like HF tokenizers (see
            `matta_core.families.decoder.tokens`); use
            the Teacher's, since Students read the Teacher's ids.
        min_words: passages with fewer words are skipped (`too_short`): too little context to pin the word down.
        max_length: passages with more tokens are skipped (`too_long`) rather than truncated, which would cut
            off the target; use the model's context length (or the Teacher cache's `max_length`).
        add_special_tokens: as the Teacher cache was tokenised, so ids match what the model was trained on.
    """
    if min_words < 2:
        raise ValueError(f"min_words must be at least 2 (a context word and the target), got {min_words}")
    result = ClozeSet(examples=[])
    for text in texts:
        words = text.split()
        if len(words) < min_words:
            result.skipped["too_short"] += 1
            continue
        passage, context = " ".join(words), " ".join(words[:-1])
        ids = token_ids(tokenizer, passage, add_special_tokens=add_special_tokens)
        if max_length is not None and len(ids) > max_length:
            result.skipped["too_long"] += 1
            continue
        prefix = token_ids(tokenizer, context, add_special_tokens=add_special_tokens)
        if not prefix or len(prefix) >= len(ids) or ids[: len(prefix)] != prefix:
            result.skipped["prefix_mismatch"] += 1
            continue
        result.examples.append(ClozeExample(passage, context, words[-1], tuple(ids), len(prefix)))
    return result
