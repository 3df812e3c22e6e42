"""Causal-LM training data: token ids and (optionally) the Teacher's top-k next-token logits, checked once up front.

The arrays are laid out as the causal-LM Teacher caches them (`matta_core.teachers.causal_lm`): one text per row,
`input_ids` [n, T] right-padded, `lengths` [n], and `topk_values` / `topk_indices` [n, T, k] where position t holds
the Teacher's distribution over token t + 1 after reading tokens 0..t.

Alignment: position t predicts token t + 1, so a row of length L trains positions 0..L-2 (the Teacher's top-k at
position L-1 is for a token the text does not have, and is not used). A batch therefore feeds ids[:, :L-1] and
scores them against ids[:, 1:L]: the last token is only ever a target, and since attention is causal, leaving it
out of the input changes no scored logit.

Checks name the row and position of the first bad value, so a broken cache fails here ("row 12, position 5")
rather than as an index error or a NaN somewhere inside a training step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from matta_core.families.decoder.config import DecoderConfig

ArrayLike = np.ndarray | torch.Tensor


class LMDataError(ValueError):
    """LM training data that cannot be used; the message names the field, the row, the position and what is allowed."""


@dataclass(frozen=True)
class LMBatch:
    """The rows of one step, cut to the longest row: inputs [B, S], next-token targets [B, S], the loss mask
    [B, S] (True on positions 0..length-2 of each row), and the Teacher's top-k for those positions [B, S, k]
    (None for CE-only data). S = (longest row in the batch) - 1, at least 1."""

    input_ids: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    topk_values: torch.Tensor | None
    topk_indices: torch.Tensor | None

    @property
    def has_teacher(self) -> bool:
        return self.topk_values is not None

    @property
    def num_tokens(self) -> int:
        """Scored (masked-in) positions."""
        return int(self.mask.sum())

    def to(self, device: torch.device | str) -> LMBatch:
        return LMBatch(
            self.input_ids.to(device),
            self.targets.to(device),
            self.mask.to(device),
            None if self.topk_values is None else self.topk_values.to(device),
            None if self.topk_indices is None else self.topk_indices.to(device),
        )


class LMTrainingData:
    """Token ids with lengths and, optionally, the Teacher's top-k logits; validated on construction.

    Padding is normalised: pad ids become 0 and pad top-k entries 0.0 / -1, whatever the source used (never
    scored, and, attention being causal, unable to change a real position's logits). Rows of length 1 are allowed
    but train nothing (no next token); at least one row needs 2 tokens or more.
    """

    def __init__(
        self,
        input_ids: ArrayLike,
        lengths: ArrayLike,
        topk_values: ArrayLike | None = None,
        topk_indices: ArrayLike | None = None,
        *,
        vocab_size: int,
    ) -> None:
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise LMDataError(f"vocab_size must be a positive integer, got {vocab_size!r}")
        self.vocab_size = vocab_size
        ids = _integers("input_ids", input_ids, ndim=2, what="[rows, max_length]")
        n, width = ids.shape
        if n == 0:
            raise LMDataError("no training rows: input_ids has 0 rows")
        if width < 2:
            raise LMDataError(f"input_ids has max_length {width}: next-token training needs at least 2 positions")
        lens = _integers("lengths", lengths, ndim=1, what="[rows]")
        if lens.shape[0] != n:
            raise LMDataError(f"lengths has {lens.shape[0]} rows but input_ids has {n}")
        _first_bad("lengths", (lens < 1) | (lens > width), lens, f"allowed 1..{width} (input_ids max_length)")
        if int(lens.max()) < 2:
            raise LMDataError("every row has length 1: there is no next token to train on (need a row of >= 2)")
        real = np.arange(width)[None, :] < lens[:, None]  # [n, T]: positions holding a real token
        _first_bad("input_ids", real & ((ids < 0) | (ids >= vocab_size)), ids, f"allowed 0..{vocab_size - 1}")
        self.input_ids = torch.from_numpy(np.where(real, ids, 0))
        self.lengths = torch.from_numpy(lens)
        self.topk_values, self.topk_indices = _check_teacher(topk_values, topk_indices, real, vocab_size)

    @classmethod
    def from_teacher_outputs(
        cls, outputs: Mapping[str, ArrayLike], *, vocab_size: int, with_teacher: bool = True
    ) -> LMTrainingData:
        """From a causal-LM Teacher's output dict (`input_ids`, `lengths`, `topk_values`, `topk_indices`);
        `with_teacher=False` keeps the ids only (CE-only data)."""
        missing = [key for key in ("input_ids", "lengths") if key not in outputs]
        if with_teacher:
            missing += [key for key in ("topk_values", "topk_indices") if key not in outputs]
        if missing:
            raise LMDataError(f"Teacher outputs lack {missing}; present: {sorted(outputs)}")
        teacher = (outputs["topk_values"], outputs["topk_indices"]) if with_teacher else (None, None)
        return cls(outputs["input_ids"], outputs["lengths"], *teacher, vocab_size=vocab_size)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def has_teacher(self) -> bool:
        return self.topk_values is not None

    @property
    def k(self) -> int | None:
        return None if self.topk_values is None else int(self.topk_values.shape[2])

    @property
    def num_tokens(self) -> int:
        """Trained positions over all rows: sum of (length - 1)."""
        return int((self.lengths - 1).sum())

    def batch(self, rows: torch.Tensor) -> LMBatch:
        """The rows at `rows`, in that order, cut to the longest of them (see `LMBatch`)."""
        lengths = self.lengths[rows]
        seq = max(2, int(lengths.max())) - 1
        ids = self.input_ids[rows, : seq + 1]
        mask = torch.arange(seq)[None, :] < (lengths - 1)[:, None]
        values = None if self.topk_values is None else self.topk_values[rows, :seq]
        indices = None if self.topk_indices is None else self.topk_indices[rows, :seq]
        return LMBatch(ids[:, :seq], ids[:, 1:], mask, values, indices)

    def check_compatible(self, config: DecoderConfig, what: str = "training data") -> None:
        """Raise `LMDataError` if this data cannot train or evaluate a decoder with `config`."""
        if self.vocab_size != config.vocab_size:
            raise LMDataError(
                f"{what} has vocab_size {self.vocab_size} but the decoder config has vocab_size {config.vocab_size}"
            )
        longest = int(self.lengths.max())
        if longest - 1 > config.n_positions:
            row = int(torch.argmax(self.lengths))
            raise LMDataError(
                f"{what} row {row} has {longest} tokens, so the model reads {longest - 1} positions, but the "
                f"decoder config has n_positions={config.n_positions}: cache shorter texts or raise n_positions"
            )


def _check_teacher(
    values: ArrayLike | None, indices: ArrayLike | None, real: np.ndarray, vocab_size: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if values is None and indices is None:
        return None, None
    if values is None or indices is None:
        given, absent = ("topk_values", "topk_indices") if indices is None else ("topk_indices", "topk_values")
        raise LMDataError(f"{given} was given without {absent}: give both (Teacher data) or neither (CE-only)")
    n, width = real.shape
    vals = _numpy(values)
    if vals.ndim != 3 or vals.shape[:2] != (n, width):
        raise LMDataError(f"topk_values must be [rows, max_length, k] = [{n}, {width}, k], got shape {vals.shape}")
    if not np.issubdtype(vals.dtype, np.floating):
        raise LMDataError(f"topk_values must be floats (raw logits), got dtype {vals.dtype}")
    idx = _integers("topk_indices", indices, ndim=3, what="[rows, max_length, k]")
    if idx.shape != vals.shape:
        raise LMDataError(f"topk_indices has shape {idx.shape} but topk_values has {vals.shape}: they must match")
    k = vals.shape[2]
    if k < 1 or k > vocab_size:
        raise LMDataError(f"top-k has k={k} entries per position; allowed 1..{vocab_size} (vocab_size)")
    vals = vals.astype(np.float32)
    real_k = np.broadcast_to(real[:, :, None], vals.shape)
    _first_bad("topk_values", real_k & ~np.isfinite(vals), vals, "logits must be finite at real positions")
    _first_bad("topk_indices", real_k & ((idx < 0) | (idx >= vocab_size)), idx,
               f"allowed 0..{vocab_size - 1} at real positions (-1 only after a row's length)")
    return torch.from_numpy(np.where(real_k, vals, 0.0).astype(np.float32)), torch.from_numpy(np.where(real_k, idx, -1))


def _numpy(array: ArrayLike) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def _integers(name: str, array: ArrayLike, *, ndim: int, what: str) -> np.ndarray:
    out = _numpy(array)
    if out.ndim != ndim:
        raise LMDataError(f"{name} must be {ndim}-D {what}, got shape {out.shape}")
    if out.dtype == np.bool_ or not np.issubdtype(out.dtype, np.integer):
        raise LMDataError(f"{name} must be integers, got dtype {out.dtype}")
    return out.astype(np.int64)


def _first_bad(name: str, bad: np.ndarray, values: np.ndarray, allowed: str) -> None:
    """Raise naming the first bad entry (row, position, top-k entry as applicable) and how many there are."""
    if not bad.any():
        return
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    labels = ("row", "position", "entry")[: len(where)]
    at = ", ".join(f"{label} {i}" for label, i in zip(labels, where, strict=True))
    raise LMDataError(f"{name} at {at} is {values[where]}: {allowed}; {int(bad.sum())} bad value(s) in all")
