"""Which embedding dims each width of a classifier reads when the embedding nests (`student_embed_dim`), and what
makes a nesting valid. Plain integers, no torch: the run config checks it where every task reads it."""

from __future__ import annotations

import math


def check_nested_embedding(
    embed_dim: int, student_embed_dim: int, min_embed_dim: int, ta_width: int, student_width: int,
    num_dense_features: int = 0,
) -> None:
    """ValueError naming the field when the nesting cannot work (`*_width`: the first hidden layer's widths)."""
    if num_dense_features:
        raise ValueError(f"student_embed_dim nests the embedding of text-only models; num_dense_features must be 0, "
                         f"got {num_dense_features}")
    if not 1 <= min_embed_dim <= student_embed_dim <= embed_dim:
        raise ValueError(f"student_embed_dim must be in min_embed_dim..embed_dim ({min_embed_dim}..{embed_dim}), "
                         f"got {student_embed_dim}")
    if student_embed_dim < embed_dim and student_width >= ta_width:
        raise ValueError(f"student_embed_dim {student_embed_dim} < embed_dim {embed_dim} needs a first hidden layer "
                         f"wider in the TA ({ta_width}) than in the Student ({student_width}): the embedding dims "
                         "follow that layer's width")


def nested_embed_dims(
    width: int, embed_dim: int, student_embed_dim: int, min_embed_dim: int, ta_width: int, student_width: int
) -> int:
    """The dims a sub-model whose first hidden layer is `width` wide reads: log-linear in `width` between the
    Student (`student_embed_dim` at `student_width`) and the TA (`embed_dim` at `ta_width`), proportional to
    `width` below the Student, and never under `min_embed_dim`."""
    if width <= student_width:
        dims = student_embed_dim * width / student_width
    else:
        share = (math.log(width) - math.log(student_width)) / (math.log(ta_width) - math.log(student_width))
        dims = math.exp(math.log(student_embed_dim) + share * (math.log(embed_dim) - math.log(student_embed_dim)))
    return int(min(embed_dim, max(min_embed_dim, round(dims))))
