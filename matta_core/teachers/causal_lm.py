"""Causal-LM Teacher: any Hugging Face causal LM (a local folder, or a GGUF file in one), top-k logits per token.

Output layout (``topk_logits``), fixed-size so shards stack and Students can batch without ragged handling:

- ``input_ids`` int64 [n, max_length]: the tokenisation the Teacher read (truncated to `max_length`), padded with
  the tokenizer's pad id. Students must train on these ids, not re-tokenise.
- ``lengths`` int64 [n]: real tokens per row.
- ``topk_values`` float32 [n, max_length, k]: at position t < length, the k largest raw logits (not
  log-probabilities) of the next-token distribution after reading tokens 0..t, sorted descending.
- ``topk_indices`` int64 [n, max_length, k]: their vocabulary ids.
- Positions t >= length hold value 0.0 and index -1 (never a real id, so misuse fails loudly).

The model loads on the first `predict`; `fingerprint()` hashes the files and `output_spec` reads only the config.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from matta_core.teachers.base import OutputSpec, Teacher
from matta_core.teachers.fingerprint import sha256_dir, sha256_file, sha256_json

PAD_INDEX = -1


class CausalLMTeacher(Teacher):
    """Top-k next-token logits of a causal LM; see the module doc for the output layout."""

    def __init__(
        self,
        model_path: str,
        *,
        gguf_file: str | None = None,
        k: int = 32,
        max_length: int = 64,
        batch_size: int = 8,
        add_special_tokens: bool = True,
        vocab_size: int | None = None,
        name: str | None = None,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"CausalLMTeacher: model_path {model_path} is not a local directory")
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise FileNotFoundError(f"CausalLMTeacher: GGUF file {path / gguf_file} does not exist")
        if k <= 0 or max_length <= 0 or batch_size <= 0:
            raise ValueError(f"k, max_length and batch_size must be positive; got {k}, {max_length}, {batch_size}")
        self.model_path = path
        self.gguf_file = gguf_file
        self.k = k
        self.max_length = max_length
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
        self.name = name or (gguf_file or path.name)
        self._vocab_size = vocab_size
        self._tokenizer: Any = None
        self._model: Any = None

    # -- identity -------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Weights/tokenizer/config files (the GGUF file alone when given: it holds all three) + top-k config."""
        files = sha256_file(self.model_path / self.gguf_file) if self.gguf_file else sha256_dir(self.model_path)
        return sha256_json(
            {
                "kind": "causal_lm",
                "files": files,
                "gguf_file": self.gguf_file,
                "dtype": "float32",
                "k": self.k,
                "max_length": self.max_length,
                "add_special_tokens": self.add_special_tokens,
            }
        )

    @property
    def output_spec(self) -> OutputSpec:
        return OutputSpec("topk_logits", k=self.k, vocab_size=self.vocab_size, max_length=self.max_length)

    @property
    def vocab_size(self) -> int:
        """From the constructor, the loaded model, or the config alone (no weights loaded)."""
        if self._vocab_size is None:
            if self._model is not None:
                self._vocab_size = int(self._model.config.vocab_size)
            else:
                from transformers import AutoConfig

                self._vocab_size = int(AutoConfig.from_pretrained(str(self.model_path), **self._gguf_kw()).vocab_size)
        return self._vocab_size

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    # -- inference ------------------------------------------------------------------------------------------
    def _gguf_kw(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    def load_tokenizer(self) -> Any:
        """The Teacher's tokenizer alone (seconds, where the weights take tens): for building ids and cloze examples."""
        if self._tokenizer is None:
            os.environ["HF_HUB_OFFLINE"] = "1"  # local files only: nothing may reach for the hub
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_path), **self._gguf_kw())
        return self._tokenizer

    def load_model(self) -> tuple[Any, Any]:
        """(tokenizer, HF causal LM in eval mode), loaded once: for reference evaluation on full logits."""
        return self._load()

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            self.load_tokenizer()
            import torch
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(str(self.model_path), dtype=torch.float32, **self._gguf_kw())
            model.eval()
            vocab = int(model.config.vocab_size)
            if self._vocab_size is not None and self._vocab_size != vocab:
                raise ValueError(f"{self.name}: vocab_size={self._vocab_size} was given, the model has {vocab}")
            if self.k > vocab:
                raise ValueError(f"{self.name}: k={self.k} exceeds the vocabulary ({vocab})")
            self._vocab_size = vocab
            self._model = model
        return self._tokenizer, self._model

    def _pad_id(self, tok: Any) -> int:
        for candidate in (tok.pad_token_id, tok.eos_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Top-k logits per position for each text; layout in the module doc."""
        import torch

        tok, model = self._load()
        n, t_max, k = len(texts), self.max_length, self.k
        pad_id = self._pad_id(tok)
        encoded = tok(list(texts), add_special_tokens=self.add_special_tokens, truncation=True, max_length=t_max)
        ids: list[list[int]] = encoded["input_ids"]
        out: dict[str, np.ndarray] = {
            "topk_values": np.zeros((n, t_max, k), dtype=np.float32),
            "topk_indices": np.full((n, t_max, k), PAD_INDEX, dtype=np.int64),
            "input_ids": np.full((n, t_max), pad_id, dtype=np.int64),
            "lengths": np.array([len(x) for x in ids], dtype=np.int64),
        }
        # Batches of similar length waste little compute on padding; results go back to each row's own slot.
        order = sorted(range(n), key=lambda i: len(ids[i]))
        for start in range(0, n, self.batch_size):
            rows = [i for i in order[start : start + self.batch_size] if ids[i]]
            if not rows:
                continue
            width = max(len(ids[i]) for i in rows)
            batch = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, i in enumerate(rows):  # right padding: real tokens keep positions 0..len-1
                batch[j, : len(ids[i])] = torch.tensor(ids[i])
                mask[j, : len(ids[i])] = 1
            with torch.inference_mode():
                logits = model(input_ids=batch, attention_mask=mask).logits
                top = torch.topk(logits.float(), k, dim=-1)
            values, indices = top.values.numpy(), top.indices.numpy()
            for j, i in enumerate(rows):
                length = len(ids[i])
                out["topk_values"][i, :length] = values[j, :length]
                out["topk_indices"][i, :length] = indices[j, :length]
                out["input_ids"][i, :length] = ids[i]
        return out
