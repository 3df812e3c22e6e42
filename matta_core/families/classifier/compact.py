"""Compact extraction: store an extracted classifier's embedding table as only the rows it trained, in int8 or
float16, so a width's file and memory shrink with what it actually learned.

A hashed table has a row for every bucket, but only buckets some training example hashed into were ever updated;
the rest hold their random initialisation (on Banking77 ~37k of 2^18 rows are trained). Dropping them changes a
prediction only through n-grams never seen in training, whose rows were noise. int8 keeps one byte per value and a
float32 scale per row (symmetric: ``row ~= int8 * scale``, scale = max |value| / 127).

`compact` returns the served form (a `StandaloneClassifier` with a `CompactEmbeddingBag`, saved as format v2 by
`extract.save_extracted`); the extract step measures what it cost on the validation split.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from matta_core.features import HashedNgramFeaturizer
from matta_core.features.hashing import FeaturizerConfig
from matta_core.serving.matta_text_classifier import (
    CompactEmbeddingBag,
    ExtractedConfig,
    StandaloneClassifier,
)

__all__ = ["WARM_START_ROWS", "compact", "quantize_rows", "save_seeded_rows", "seeded_rows", "trained_buckets"]

#: In a trained folder of a warm-started run: the rows the saved model brought (trained by it, if not by this run),
#: which extraction must keep. ``{"buckets": int64[n]}``, or metadata ``all_rows: "1"`` when it brought them all.
WARM_START_ROWS = "warm_start_rows.safetensors"


def save_seeded_rows(trained_dir: Path, buckets: torch.Tensor | None) -> None:
    """Record the rows a warm start filled (None: every row) in `trained_dir` (see `WARM_START_ROWS`)."""
    rows = torch.zeros(0, dtype=torch.int64) if buckets is None else buckets.to(torch.int64).contiguous()
    save_file({"buckets": rows}, str(trained_dir / WARM_START_ROWS), metadata={"all_rows": str(int(buckets is None))})


def seeded_rows(trained_dir: Path) -> tuple[bool, np.ndarray]:
    """(whether a warm start filled every row, the buckets it filled otherwise); (False, []) without a warm start."""
    path = trained_dir / WARM_START_ROWS
    if not path.is_file():
        return False, np.zeros(0, dtype=np.int64)
    with safe_open(str(path), framework="pt") as stored:
        every = (stored.metadata() or {}).get("all_rows") == "1"
        return every, stored.get_tensor("buckets").numpy()


def trained_buckets(texts: tuple[str, ...], features: FeaturizerConfig) -> np.ndarray:
    """The sorted, distinct bucket ids the training texts hash into (the rows training updated)."""
    return _trained_buckets(tuple(texts), features).copy()


@lru_cache(maxsize=2)  # one extraction task cuts every width from the same training split
def _trained_buckets(texts: tuple[str, ...], features: FeaturizerConfig) -> np.ndarray:
    _, indices, _ = HashedNgramFeaturizer(features).csr(list(texts))
    return np.unique(indices)


def quantize_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: (values in -127..127, float32 scales > 0) with ``rows ~= values * scales[:, None]``.

    An all-zero row gets scale 1 (any scale reproduces it; a zero scale would not load)."""
    peak = rows.abs().amax(dim=1)
    scale = torch.where(peak > 0, peak / 127.0, torch.ones_like(peak))
    values = torch.round(rows / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return values, scale.to(torch.float32)


def compact(
    model: StandaloneClassifier, config: ExtractedConfig, *, dtype: str, keep_buckets: np.ndarray | None
) -> tuple[StandaloneClassifier, ExtractedConfig]:
    """The served form of a float32 extracted `model`: rows of `keep_buckets` only (None: all rows), in `dtype`.

    The IDF of a dropped bucket must be one value for all of them (it is: IDF is fitted on the training split, so
    every bucket no training example hashed into has the same, largest, IDF); the compact table stores it once.
    """
    if isinstance(model.embedding, CompactEmbeddingBag):
        raise ValueError("model is compact already: compact the float32 extraction")
    table, idf = model.embedding.weight.detach(), model.idf.detach()
    num_buckets = table.shape[0]
    state = {name: tensor for name, tensor in model.state_dict().items()
             if name not in ("embedding.weight", "idf")}
    if keep_buckets is None:
        rows, kept_idf, idf_other = table, idf, torch.ones(())
    else:
        keep = torch.as_tensor(np.asarray(keep_buckets), dtype=torch.int64)
        if keep.ndim != 1 or (len(keep) and (int(keep.min()) < 0 or int(keep.max()) >= num_buckets)):
            raise ValueError(f"keep_buckets must be bucket ids in 0..{num_buckets - 1}")
        keep = torch.unique(keep)  # sorted, distinct
        dropped = torch.ones(num_buckets, dtype=torch.bool)
        dropped[keep] = False
        other = torch.unique(idf[dropped])
        if len(other) > 1:
            raise ValueError(f"the dropped buckets have {len(other)} different IDF values ({other[:3].tolist()}...): "
                             "IDF was not fitted on the training split alone, so rows cannot be dropped; set "
                             "extraction.drop_untrained_rows: false")
        rows, kept_idf = table[keep], idf[keep]
        idf_other = other[0].clone() if len(other) else torch.ones(())
        state["embedding.buckets"] = keep.to(torch.int32)
    if dtype == "int8":
        state["embedding.rows"], state["embedding.scale"] = quantize_rows(rows)
    elif dtype == "float16":
        state["embedding.rows"] = rows.to(torch.float16)
    elif dtype == "float32":
        state["embedding.rows"] = rows.clone()
    else:
        raise ValueError(f"embedding_dtype must be float32, float16 or int8, got {dtype!r}")
    state["embedding.idf"], state["embedding.idf_other"] = kept_idf.clone(), idf_other.to(torch.float32)
    served = replace(config, embedding_dtype=dtype, embedding_rows="all" if keep_buckets is None else "trained")
    return served.build(weights={k: v.contiguous() for k, v in state.items()}).eval(), served
