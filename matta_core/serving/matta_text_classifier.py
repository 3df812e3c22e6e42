"""The servable text classifier, whole, in one file: hashed n-gram featuriser, network, saved form and predictor.

Every logged classifier carries a copy of this file, and its MLflow pyfunc (`matta_core/tracking/pyfunc_model.py`)
loads that copy: serving a registered model needs torch, numpy, safetensors and pandas from a public package index,
and nothing from matta. matta imports the same file (``matta_core.serving.matta_text_classifier``) to featurise,
train, extract and evaluate, so there is one implementation and a served model predicts exactly what the
extracted one does. Keep it so: import only the standard library and those four packages here (a test imports
this file with matta blocked).

The featuriser computes what scikit-learn's ``HashingVectorizer`` does with matta's settings (word n-grams of
``(?u)\\b\\w\\w+\\b`` tokens, ``char_wb`` n-grams, MurmurHash3 x86 32-bit with seed 0, bucket ``abs(h) %
num_buckets``, no sign flips, counts summed), which is what matta used before this file existed: models saved then
keep their meaning, bucket for bucket. A test compares the two on real data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

# ------------------------------------------------------------------------------------------------- featuriser


@dataclass(frozen=True)
class FeaturizerConfig:
    """How text becomes bucket ids. `num_buckets` is also the embedding table's row count."""

    num_buckets: int = 2**18
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    lowercase: bool = True

    def __post_init__(self) -> None:
        if self.num_buckets < 2:
            raise ValueError(f"num_buckets must be >= 2, got {self.num_buckets}")
        for name in ("word_ngrams", "char_ngrams"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high (0 disables), got {(lo, hi)}")
        object.__setattr__(self, "word_ngrams", tuple(self.word_ngrams))
        object.__setattr__(self, "char_ngrams", tuple(self.char_ngrams))

    def to_dict(self) -> dict:
        return asdict(self)


_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_WHITE_SPACES = re.compile(r"\s\s+")
_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)


def _rotl32(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def murmurhash3_32(keys: Sequence[bytes]) -> np.ndarray:
    """Signed 32-bit MurmurHash3 (x86, seed 0) of each byte string, computed for all keys at once with numpy."""
    n = len(keys)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    data = np.frombuffer(b"".join(keys), dtype=np.uint8).astype(np.uint32)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    blocks = lengths // 4
    h = np.zeros(n, dtype=np.uint32)
    for j in range(int(blocks.max(initial=0))):  # block j of every key that has one
        live = np.flatnonzero(blocks > j)
        at = starts[live] + 4 * j
        k = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24)
        mixed = _rotl32(h[live] ^ (_rotl32(k * _C1, 15) * _C2), 13)
        h[live] = mixed * np.uint32(5) + np.uint32(0xE6546B64)
    tail, at = lengths % 4, starts + 4 * blocks
    k = np.zeros(n, dtype=np.uint32)
    for need, shift in ((3, 16), (2, 8), (1, 0)):
        has = np.flatnonzero(tail >= need)
        k[has] ^= data[at[has] + need - 1] << shift
    h ^= _rotl32(k * _C1, 15) * _C2
    h ^= lengths.astype(np.uint32)
    h ^= h >> 16
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> 13
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> 16
    return h.view(np.int32)


def bucket_ids(hashes: np.ndarray, num_buckets: int) -> np.ndarray:
    """``abs(h) % num_buckets`` as int64 (computed in int64, so ``h = -2**31`` needs no special case)."""
    return np.abs(hashes.astype(np.int64)) % num_buckets


def word_ngrams(tokens: Sequence[str], low: int, high: int) -> list[str]:
    """Space-joined runs of `low`..`high` consecutive tokens."""
    grams: list[str] = []
    for n in range(low, min(high, len(tokens)) + 1):
        grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside words padded with one space each side; a word shorter than n counts once."""
    grams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text).split():
        word = f" {word} "
        for n in range(low, high + 1):
            offset = 0
            grams.append(word[offset:offset + n])
            while offset + n < len(word):
                offset += 1
                grams.append(word[offset:offset + n])
            if offset == 0:
                break
    return grams


class HashedNgramFeaturizer:
    """Texts -> sparse n-gram counts over `num_buckets` hashed buckets (word and char n-grams share buckets)."""

    def __init__(self, config: FeaturizerConfig) -> None:
        if config.word_ngrams[0] == 0 and config.char_ngrams[0] == 0:
            raise ValueError("featurizer has neither word nor char n-grams enabled")
        self.config = config

    def ngrams(self, text: str) -> list[str]:
        """Every word and character n-gram of `text`, repeats included."""
        if self.config.lowercase:
            text = text.lower()
        grams: list[str] = []
        low, high = self.config.word_ngrams
        if low > 0:
            grams += word_ngrams(_TOKEN.findall(text), low, high)
        low, high = self.config.char_ngrams
        if low > 0:
            grams += char_wb_ngrams(text, low, high)
        return grams

    def csr(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts as CSR arrays ``(indptr, indices, counts)``: int64, int64 (sorted within a row), float32."""
        grams: list[str] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {row} is a {type(text).__name__}, not a str")
            row_grams = self.ngrams(text)
            grams += row_grams
            lengths[row] = len(row_grams)
        # Hash each distinct n-gram once: a split repeats the same few thousand n-grams many times.
        index = {gram: i for i, gram in enumerate(dict.fromkeys(grams))}
        codes = np.fromiter(map(index.__getitem__, grams), dtype=np.int64, count=len(grams))
        buckets = bucket_ids(murmurhash3_32([gram.encode("utf-8") for gram in index]), self.config.num_buckets)
        keys = np.repeat(np.arange(len(texts), dtype=np.int64), lengths) * self.config.num_buckets + buckets[codes]
        keys, counts = np.unique(keys, return_counts=True)  # sorted by (row, bucket), repeats summed
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // self.config.num_buckets, minlength=len(texts)), out=indptr[1:])
        return indptr, keys % self.config.num_buckets, counts.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- network


def tfidf_weights(idf_of_ids: torch.Tensor, counts: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Each id's TF-IDF weight, L2-normalised over the ids of its example (examples start at `offsets`)."""
    weights = counts * idf_of_ids
    lengths = torch.diff(offsets, append=offsets.new_tensor([counts.numel()]))
    example = torch.repeat_interleave(torch.arange(offsets.numel(), device=counts.device), lengths)
    norms = torch.zeros(offsets.numel(), device=weights.device).index_add_(0, example, weights * weights)
    return weights / norms.sqrt().clamp_min(1e-12)[example]


def pool_bag(
    embedding: nn.EmbeddingBag, idf: torch.Tensor, ids: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """TF-IDF weighted sum of n-gram embeddings, with the weights L2-normalised per example.

    Normalising makes long and short queries comparable; summing (rather than averaging) keeps a rare,
    informative n-gram from being diluted by the many frequent ones.
    """
    weights = tfidf_weights(idf[ids], counts, offsets)
    return embedding(ids, offsets, per_sample_weights=weights)


#: How a saved model stores its embedding rows (`ExtractedConfig.embedding_dtype`). int8: one symmetric scale per
#: row (row / scale rounds to -127..127), dequantised per looked-up row, so memory holds one byte per value.
EMBEDDING_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8}
#: Which rows a saved model keeps (`ExtractedConfig.embedding_rows`): "all" buckets, or only the "trained" ones
#: (buckets some training example hashed into; the others held only their random initialisation).
EMBEDDING_ROWS = ("all", "trained")


class CompactEmbeddingBag(nn.Module):
    """A hashed embedding bag stored compactly: the kept rows only (sorted bucket ids beside them), in float32,
    float16 or int8, with the IDF of the kept buckets and one IDF for every other bucket.

    A bucket that was dropped contributes no vector, but its TF-IDF weight still counts in the example's L2 norm,
    as it did in the model before compaction: only its (untrained, random) row is gone. `pool` computes what
    `pool_bag` does with the full table, up to the rows dropped and the rounding of the stored dtype.

    Stored compactly, served fast: `prepare` (called on load) decodes the kept rows to float32 once, with a zero row
    for every dropped bucket, and builds a bucket -> row lookup, so a call is one lookup and one `embedding_bag`, as
    fast as the full table. Gathering int8 rows and decoding them per call measured 5-10x slower on a CPU.
    Memory holds the decoded kept rows (kept x dims x 4 bytes) and the lookup (4 bytes a bucket), not the full table.
    """

    rows: torch.Tensor
    idf: torch.Tensor
    idf_other: torch.Tensor

    def __init__(self, num_buckets: int, embed_dim: int, num_rows: int, dtype: str, keeps_all: bool) -> None:
        super().__init__()
        if dtype not in EMBEDDING_DTYPES:
            raise ValueError(f"embedding_dtype must be one of {sorted(EMBEDDING_DTYPES)}, got {dtype!r}")
        if keeps_all and num_rows != num_buckets:
            raise ValueError(f"a table that keeps all rows has num_buckets={num_buckets} rows, not {num_rows}")
        self.num_embeddings, self.embedding_dim, self.dtype_name = num_buckets, embed_dim, dtype
        self.register_buffer("rows", torch.zeros(num_rows, embed_dim, dtype=EMBEDDING_DTYPES[dtype]))
        self.register_buffer("scale", torch.ones(num_rows) if dtype == "int8" else None)
        # int32: half the bytes of int64, and bucket ids are < 2**31 (checked by ExtractedConfig).
        self.register_buffer("buckets", None if keeps_all else torch.zeros(num_rows, dtype=torch.int32))
        self.register_buffer("idf", torch.ones(num_rows))
        self.register_buffer("idf_other", torch.ones(()))
        # What a call reads, derived from the stored buffers by `prepare` (not saved).
        self.register_buffer("table", None, persistent=False)
        self.register_buffer("row_of_bucket", None, persistent=False)
        self.register_buffer("row_idf", None, persistent=False)

    def stored_values(self) -> int:
        """Embedding values it holds (kept rows x dims): what a parameter count calls its embedding parameters."""
        return self.rows.numel()

    def prepare(self) -> CompactEmbeddingBag:
        """Decode the stored rows for serving: float32 rows plus one zero row (index = kept rows) that every
        dropped bucket maps to, that row's IDF the dropped buckets' one, and the bucket -> row lookup."""
        rows = self.rows.float()
        if self.scale is not None:
            rows = rows * self.scale[:, None]
        self.table = torch.cat([rows, rows.new_zeros(1, self.embedding_dim)])
        self.row_idf = torch.cat([self.idf, self.idf_other.reshape(1)])
        if self.buckets is not None:
            lookup = torch.full((self.num_embeddings,), len(self.rows), dtype=torch.int32)
            lookup[self.buckets.long()] = torch.arange(len(self.rows), dtype=torch.int32)
            self.row_of_bucket = lookup
        return self

    def pool(self, ids: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The TF-IDF weighted, L2-normalised bag of each example's rows: [num_examples, embed_dim] float32."""
        if self.table is None:
            self.prepare()
        assert self.table is not None and self.row_idf is not None
        position = ids if self.row_of_bucket is None else self.row_of_bucket[ids].long()
        weights = tfidf_weights(self.row_idf[position], counts, offsets)
        # A dropped bucket's row is the zero row: it adds nothing, but its weight stays in the norm above.
        return F.embedding_bag(position, self.table, offsets, mode="sum", per_sample_weights=weights)


class StandaloneClassifier(nn.Module):
    """Embedding bag [+ dense columns] -> Linear/activation blocks of fixed widths -> class head."""

    idf: torch.Tensor  # a buffer: saved with the weights, not trained

    def __init__(
        self,
        num_buckets: int,
        embed_dim: int,
        hidden_widths: Sequence[int],
        num_classes: int,
        num_dense_features: int = 0,
        activation: str = "relu",
        *,
        init: bool = True,
        compact: tuple[int, str, bool] | None = None,
    ) -> None:
        """`init=False` leaves the embedding table as allocated, for a caller that loads weights next
        (`ExtractedConfig.build`): its random draw is most of a build's time. `compact`: (stored rows, dtype,
        whether all rows are kept) for a `CompactEmbeddingBag` instead of a full float32 table."""
        super().__init__()
        self.num_dense_features = num_dense_features
        self.embedding: nn.EmbeddingBag | CompactEmbeddingBag
        if compact is None:
            table = None if init else torch.empty(num_buckets, embed_dim)
            self.embedding = nn.EmbeddingBag(num_buckets, embed_dim, mode="sum", _weight=table)
            self.register_buffer("idf", torch.ones(num_buckets))
        else:  # (stored rows, dtype, keeps all rows): the IDF lives in the compact table
            self.embedding = CompactEmbeddingBag(num_buckets, embed_dim, *compact)
        dims = [embed_dim + num_dense_features, *hidden_widths]
        self.blocks = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(hidden_widths)))
        self.head = nn.Linear(dims[-1], num_classes)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(
        self,
        ids: torch.Tensor,
        offsets: torch.Tensor,
        counts: torch.Tensor,
        dense: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits for a batch in `nn.EmbeddingBag` layout (ids, offsets, per-id counts)."""
        if isinstance(self.embedding, CompactEmbeddingBag):
            hidden = self.embedding.pool(ids, offsets, counts)
        else:
            hidden = pool_bag(self.embedding, self.idf, ids, offsets, counts)
        if self.num_dense_features:
            if dense is None:
                raise ValueError(f"model takes {self.num_dense_features} dense feature columns, got none")
            hidden = torch.cat([hidden, dense], dim=-1)
        for block in self.blocks:
            hidden = self.activation(block(hidden))
        return self.head(hidden)


# ------------------------------------------------------------------------------------------------- saved form

FORMAT = "matta.standalone_classifier/v1"
#: The format of a model whose embedding is stored compactly (`ExtractedConfig.compact`): a reader that knows
#: only v1 refuses it by name instead of failing on unexpected tensors.
FORMAT_COMPACT = "matta.standalone_classifier/v2"
FORMATS = (FORMAT, FORMAT_COMPACT)
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ExtractedConfig:
    """Everything needed to rebuild and serve an extracted model, stored as `config.json` beside the weights."""

    num_buckets: int
    embed_dim: int
    hidden_widths: tuple[int, ...]
    num_classes: int
    num_dense_features: int
    activation: str
    features: FeaturizerConfig
    labels: tuple[str, ...] = ()
    # Where it came from: the TA's widths, so a reader can tell a Student from a Mix'n'Match cut.
    ta_widths: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    # Probabilities are softmax(logits / temperature): fitted on the validation split at extraction (temperature
    # scaling), so a served score means what it says. 1.0 for models saved before calibration existed.
    temperature: float = 1.0
    # How the embedding table is stored (`EMBEDDING_DTYPES`, `EMBEDDING_ROWS`): anything but float32/all makes it a
    # `CompactEmbeddingBag` and the saved format v2.
    embedding_dtype: str = "float32"
    embedding_rows: str = "all"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        if self.embedding_dtype not in EMBEDDING_DTYPES:
            raise ValueError(f"embedding_dtype must be one of {list(EMBEDDING_DTYPES)}, got {self.embedding_dtype!r}")
        if self.embedding_rows not in EMBEDDING_ROWS:
            raise ValueError(f"embedding_rows must be one of {list(EMBEDDING_ROWS)}, got {self.embedding_rows!r}")
        if self.embedding_rows == "trained" and self.num_buckets > 2**31:
            raise ValueError(f"embedding_rows 'trained' stores bucket ids as int32: num_buckets must be <= 2**31, "
                             f"got {self.num_buckets}")

    @property
    def compact(self) -> bool:
        """Whether the embedding is a `CompactEmbeddingBag` (fewer rows or a narrower dtype than the full table)."""
        return (self.embedding_dtype, self.embedding_rows) != ("float32", "all")

    def with_metadata(self, **values: Any) -> ExtractedConfig:
        """A copy with `values` added to `metadata` (name, arm, lineage: whatever a reader needs to know)."""
        return replace(self, metadata={**self.metadata, **values})

    def build(self, weights: Mapping[str, torch.Tensor] | None = None) -> StandaloneClassifier:
        """The network: randomly initialised, or holding `weights` (a whole state dict, checked strictly).

        With `weights` it is built on the meta device, uninitialised, and takes those tensors as its own without
        copying them: a random initialisation (a normal draw over the whole embedding table: most of the time a
        load took) would be overwritten at once. The caller hands over tensors nothing else holds.
        """
        args = (self.num_buckets, self.embed_dim, self.hidden_widths, self.num_classes, self.num_dense_features,
                self.activation)
        if weights is None:
            if self.compact:
                raise ValueError("a compact embedding is made from trained weights (extraction); it has no random "
                                 "initialisation: pass weights")
            return StandaloneClassifier(*args)
        compact = None
        if self.compact:
            rows = weights.get("embedding.rows")
            if rows is None:
                raise ValueError(f"a {self.embedding_dtype}/{self.embedding_rows} embedding needs an "
                                 f"'embedding.rows' tensor; got {sorted(weights)}")
            compact = (int(rows.shape[0]), self.embedding_dtype, self.embedding_rows == "all")
        # No init at all, not even on the meta device: a normal draw there runs through torch's Python reference
        # ops, whose first call imports torch's compiler (~1 s in a fresh process).
        with torch.device("meta"):
            model = StandaloneClassifier(*args, init=False, compact=compact)
        model.load_state_dict(weights, strict=True, assign=True)
        if isinstance(model.embedding, CompactEmbeddingBag):
            check_compact_embedding(model.embedding)
            model.embedding.prepare()
        return model

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_COMPACT if self.compact else FORMAT,
            "num_buckets": self.num_buckets,
            "embed_dim": self.embed_dim,
            "hidden_widths": list(self.hidden_widths),
            "num_classes": self.num_classes,
            "num_dense_features": self.num_dense_features,
            "activation": self.activation,
            "features": self.features.to_dict(),
            "labels": list(self.labels),
            "ta_widths": list(self.ta_widths),
            "metadata": self.metadata,
            "temperature": self.temperature,
            "embedding_dtype": self.embedding_dtype,
            "embedding_rows": self.embedding_rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ExtractedConfig:
        if data.get("format") not in FORMATS:
            raise ValueError(f"{source}: format {data.get('format')!r} is not one of {list(FORMATS)}")
        features = dict(data["features"])
        features["word_ngrams"] = tuple(features["word_ngrams"])
        features["char_ngrams"] = tuple(features["char_ngrams"])
        return cls(
            num_buckets=int(data["num_buckets"]),
            embed_dim=int(data["embed_dim"]),
            hidden_widths=tuple(int(w) for w in data["hidden_widths"]),
            num_classes=int(data["num_classes"]),
            num_dense_features=int(data["num_dense_features"]),
            activation=str(data["activation"]),
            features=FeaturizerConfig(**features),
            labels=tuple(data.get("labels", ())),
            ta_widths=tuple(int(w) for w in data.get("ta_widths", ())),
            metadata=dict(data.get("metadata", {})),
            temperature=float(data.get("temperature", 1.0)),
            embedding_dtype=str(data.get("embedding_dtype", "float32")),
            embedding_rows=str(data.get("embedding_rows", "all")),
        )


def check_compact_embedding(embedding: CompactEmbeddingBag) -> None:
    """Raise ValueError unless the stored table is consistent: finite values and scales, and kept bucket ids
    sorted, distinct and inside the table (the lookup is a binary search over them)."""
    rows, buckets = embedding.rows, embedding.buckets
    problems = []
    if rows.dtype != EMBEDDING_DTYPES[embedding.dtype_name]:
        problems.append(f"rows are {rows.dtype}, the config says {embedding.dtype_name}")
    if rows.is_floating_point() and not bool(torch.isfinite(rows).all()):
        problems.append("rows hold non-finite values")
    if embedding.scale is not None and not bool((torch.isfinite(embedding.scale) & (embedding.scale > 0)).all()):
        problems.append("int8 row scales must be finite and > 0")
    if buckets is not None and len(buckets):
        if not bool((buckets[1:] > buckets[:-1]).all()):
            problems.append("kept bucket ids are not sorted and distinct")
        if int(buckets[0]) < 0 or int(buckets[-1]) >= embedding.num_embeddings:
            problems.append(f"kept bucket ids fall outside 0..{embedding.num_embeddings - 1}")
    for name in ("idf", "idf_other"):
        if not bool(torch.isfinite(getattr(embedding, name)).all()):
            problems.append(f"{name} holds non-finite values")
    if problems:
        raise ValueError("compact embedding table is inconsistent: " + "; ".join(problems))


def load_classifier(directory: str | Path) -> tuple[StandaloneClassifier, ExtractedConfig]:
    """Load a saved standalone model, in eval mode (no pickle: safetensors + JSON)."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {directory} is not a saved matta model")
    config = ExtractedConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
    try:
        model = config.build(weights=load_file(str(weights_path)))
    except (ValueError, RuntimeError) as error:  # a mismatched state dict is a RuntimeError from torch
        raise ValueError(f"{weights_path} does not match {config_path}: {error}") from None
    return model.eval(), config


# -------------------------------------------------------------------------------------------------- predictor

TEXT_COLUMN = "text"
LABEL_COLUMN = "label"
PROBABILITY_COLUMN = "probability"
CLASS_PROBABILITY_PREFIX = "probability_"
#: Rows featurised and scored at once: bounds memory for large inputs without slowing small ones.
CHUNK_ROWS = 4096


def class_names(config: ExtractedConfig) -> list[str]:
    """The label names of a model, or ``"0".."k-1"`` when it was saved without names."""
    return list(config.labels) if config.labels else [str(i) for i in range(config.num_classes)]


def output_columns(config: ExtractedConfig) -> list[str]:
    """``label``, ``probability`` (of that label), then ``probability_<name>`` for every class, in class order."""
    names = class_names(config)
    columns = [LABEL_COLUMN, PROBABILITY_COLUMN, *(CLASS_PROBABILITY_PREFIX + name for name in names)]
    if len(set(columns)) != len(columns):
        raise ValueError(f"label names {names} give duplicate output columns; labels must be unique")
    return columns


class TextPredictor:
    """A standalone model and its featuriser, loaded from a ``model.safetensors`` + ``config.json`` folder."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model, self.config = load_classifier(model_dir)
        if self.config.num_dense_features:
            raise ValueError(
                f"{model_dir}: model takes {self.config.num_dense_features} dense feature columns; the text-only "
                "predictor serves models with num_dense_features=0"
            )
        self.featurizer = HashedNgramFeaturizer(self.config.features)
        self.names = class_names(self.config)
        self.columns = output_columns(self.config)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, num_classes] class logits (before temperature scaling)."""
        return self._scores(texts, softmax=False)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, num_classes] calibrated probabilities: softmax(logits / the config's temperature)."""
        return self._scores(texts, softmax=True)

    def _scores(self, texts: Sequence[str], softmax: bool) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), CHUNK_ROWS):
            indptr, indices, counts = self.featurizer.csr(list(texts[start:start + CHUNK_ROWS]))
            with torch.inference_mode():
                scores = self.model(torch.from_numpy(indices), torch.from_numpy(indptr[:-1]),
                                    torch.from_numpy(counts))
                if softmax:
                    scores = torch.softmax(scores / self.config.temperature, dim=-1)
                parts.append(scores.numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self.config.num_classes), dtype=np.float32)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A frame with a ``text`` column -> a frame with `self.columns` (same row order and index)."""
        if TEXT_COLUMN not in frame.columns:
            raise ValueError(f"input needs a {TEXT_COLUMN!r} column; got columns {list(frame.columns)}")
        texts = frame[TEXT_COLUMN]
        missing = texts.isna()
        if missing.any():
            rows = list(frame.index[missing][:5])
            raise ValueError(f"{TEXT_COLUMN!r} is missing (None/NaN) in rows {rows}; send an empty string instead")
        probs = self.probabilities([str(t) for t in texts])
        top = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
        out = {
            LABEL_COLUMN: [self.names[i] for i in top],
            PROBABILITY_COLUMN: probs[np.arange(len(top)), top],
        }
        for i, column in enumerate(self.columns[2:]):
            out[column] = probs[:, i]
        return pd.DataFrame(out, index=frame.index)
