"""The nested decoder family: extraction parity, causality, slicing, width errors, save/load and HF GPT-2 export."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file

from matta_core.families.decoder.config import DecoderConfig, LayerWidth
from matta_core.families.decoder.extract import decoder_param_count, extract_decoder
from matta_core.families.decoder.hf_export import HFExportError, export_hf_gpt2
from matta_core.families.decoder.model import NestedDecoder
from matta_core.families.decoder.standalone import StandaloneDecoder
from matta_core.families.decoder.widths import resolve_widths, sample_decoder_widths
from matta_core.nested import WidthError

VOCAB, SEQ = 61, 12


def make_config(**overrides) -> DecoderConfig:
    values = dict(
        vocab_size=VOCAB,
        n_positions=16,
        d_model=32,
        n_layers=3,
        n_heads=4,
        ffn_widths=(64, 48, 64),
        student_ffn_widths=(16, 8, 16),
        student_heads=(2, 1, 2),
        min_ffn_width=4,
    )
    return DecoderConfig(**{**values, **overrides})


def make_model(seed: int = 0, **overrides) -> NestedDecoder:
    torch.manual_seed(seed)
    model = NestedDecoder(make_config(**overrides))
    # GPT-2's N(0, 0.02) init makes attention near-uniform, which would hide a q/k/v layout bug: use large random
    # weights (LayerNorms included) so every slice visibly matters.
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.3)
    return model.eval()


def token_ids(seed: int = 1, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, SEQ), generator=torch.Generator().manual_seed(seed))


PARITY_WIDTHS = {
    "ta": ((64, 4), (48, 4), (64, 4)),
    "student": ((16, 2), (8, 1), (16, 2)),
    "mix_wide_narrow_wide": ((64, 4), (4, 1), (64, 4)),
    "mix_heads_only": ((64, 1), (48, 3), (64, 2)),
    "mix_ragged": ((5, 3), (48, 2), (17, 4)),
}


@pytest.mark.parametrize("name", list(PARITY_WIDTHS))
def test_extracted_decoder_matches_nested_decoder_at_its_widths(name):
    model, ids = make_model(), token_ids()
    widths = PARITY_WIDTHS[name]
    with torch.no_grad():
        nested = model(ids, widths)
        standalone = extract_decoder(model, widths)
        alone = standalone(ids)
    assert nested.shape == (2, SEQ, VOCAB) and torch.isfinite(nested).all()
    assert (alone - nested).abs().max().item() <= 1e-5
    assert sum(p.numel() for p in standalone.parameters()) == decoder_param_count(model.config, widths)
    # Physically smaller: each block holds only its slice.
    for block, (ffn, heads) in zip(standalone.blocks, widths, strict=True):
        assert block.mlp.fc.weight.shape == (ffn, 32)
        assert block.attn.qkv.weight.shape == (3 * heads * 8, 32)
        assert block.attn.proj.weight.shape == (32, heads * 8)
    assert all(p.data_ptr() != q.data_ptr() for p in standalone.parameters() for q in model.parameters())


def test_widths_change_the_output_and_the_student_is_a_slice_of_the_ta():
    model, ids = make_model(), token_ids()
    student = model.config.student_widths
    with torch.no_grad():
        before = model(ids, student)
        assert not torch.allclose(before, model(ids))
        # Weights outside the Student's slices must not matter to it.
        for block, (ffn, heads) in zip(model.blocks, student, strict=True):
            block.mlp.fc.weight[ffn:] += 5.0
            block.mlp.proj.weight[:, ffn:] -= 3.0
            block.attn.qkv.weight[3 * heads * 8 :] *= 7.0
            block.attn.proj.weight[:, heads * 8 :] += 1.0
        torch.testing.assert_close(model(ids, student), before)


def test_param_count_follows_the_widths_by_hand():
    config = make_config()
    d, v, p = 32, VOCAB, 16

    def block(ffn, heads):
        a = heads * 8
        return 4 * d + (d * 3 * a + 3 * a) + (a * d + d) + (d * ffn + ffn) + (ffn * d + d)

    by_hand = v * d + p * d + 2 * d + block(16, 2) + block(8, 1) + block(16, 2)
    assert decoder_param_count(config, config.student_widths) == by_hand


@pytest.mark.parametrize("widths", [None, ((4, 1), (8, 2), (4, 1))])
def test_future_tokens_never_change_past_logits(widths):
    model, ids = make_model(), token_ids(batch=1)
    cut = 5
    changed = ids.clone()
    changed[:, cut:] = (ids[:, cut:] + 1 + torch.arange(SEQ - cut)) % VOCAB
    with torch.no_grad():
        a, b = model(ids, widths), model(changed, widths)
    assert (a[:, :cut] - b[:, :cut]).abs().max().item() <= 1e-6
    assert (a[:, cut:] - b[:, cut:]).abs().max().item() > 1e-3  # the test can see a change where one is due


def test_gradients_reach_only_the_slices_a_narrow_width_uses():
    model, ids = make_model(), token_ids()
    widths = ((8, 1), (4, 2), (16, 3))
    model(ids, widths).square().mean().backward()
    for block, (ffn, heads) in zip(model.blocks, widths, strict=True):
        rows = 3 * heads * 8
        used_and_unused = [
            (block.mlp.fc.weight.grad[:ffn], block.mlp.fc.weight.grad[ffn:]),
            (block.mlp.fc.bias.grad[:ffn], block.mlp.fc.bias.grad[ffn:]),
            (block.mlp.proj.weight.grad[:, :ffn], block.mlp.proj.weight.grad[:, ffn:]),
            (block.attn.qkv.weight.grad[:rows], block.attn.qkv.weight.grad[rows:]),
            (block.attn.qkv.bias.grad[:rows], block.attn.qkv.bias.grad[rows:]),
            (block.attn.proj.weight.grad[:, : heads * 8], block.attn.proj.weight.grad[:, heads * 8 :]),
        ]
        for used, unused in used_and_unused:
            assert used.abs().sum() > 0
            assert unused.abs().sum() == 0


@pytest.mark.parametrize(
    ("widths", "error", "message"),
    [
        (((65, 4), (48, 4), (64, 4)), WidthError, "layer blocks.0.ffn: asked width 65, allowed 4..64"),
        (((64, 4), (48, 5), (64, 4)), WidthError, "layer blocks.1.heads: asked width 5, allowed 1..4"),
        (((64, 4), (48, 4), (3, 4)), WidthError, "layer blocks.2.ffn: asked width 3, allowed 4..64"),
        (((64, 4), (48, 4)), WidthError, "has 2 layers but the model has 3 (blocks.0..blocks.2)"),
        (((64, 4), (48,), (64, 4)), WidthError, "layer blocks.1: widths entry (48,) is not an (ffn_width, n_heads)"),
        (((64, 4), (48, 2.5), (64, 4)), WidthError, "layer blocks.1.heads: width 2.5 is not an integer"),
        (64, WidthError, "sequence of 3 (ffn_width, n_heads) pairs"),
    ],
)
def test_bad_widths_name_the_layer_and_what_is_allowed(widths, error, message):
    model, ids = make_model(), token_ids()
    with pytest.raises(error, match=re.escape(message)):
        model(ids, widths)
    with pytest.raises(error, match=re.escape(message)):
        extract_decoder(model, widths)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"d_model": 30}, "d_model 30 is not divisible by n_heads 4; pick n_heads among [1, 2, 3, 5, 6, 10, 15, 30]"),
        ({"student_heads": (2, 5, 2)}, "the Student does not fit the TA: layer blocks.1.heads: asked width 5"),
        ({"student_ffn_widths": (16, 8)}, "student_ffn_widths has 2 entries but n_layers is 3"),
        ({"ffn_widths": (64, 0, 64)}, "ffn_widths[1] (layer blocks.1) must be a positive integer"),
        ({"activation": "relu"}, "activation 'relu' unknown"),
    ],
)
def test_bad_configs_say_which_field_and_layer(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_config(**overrides)


def test_inputs_the_embeddings_cannot_take_get_clear_errors():
    model = make_model()
    with pytest.raises(ValueError, match=re.escape("token id out of range: saw 0..61, allowed 0..60")):
        model(torch.tensor([[0, 61]]))
    with pytest.raises(ValueError, match="sequence length 17 exceeds n_positions 16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_width_specs_resolve_and_sampled_widths_stay_valid():
    config = make_config()
    assert resolve_widths(config) == resolve_widths(config, "ta") == config.ta_widths
    assert resolve_widths(config, "student") == config.student_widths
    assert resolve_widths(config, {"ffn": 8, "heads": [1, 2, 3]}) == ((8, 1), (8, 2), (8, 3))
    assert resolve_widths(config, [[5, 3], [48, 2], [17, 4]]) == PARITY_WIDTHS["mix_ragged"]
    assert isinstance(resolve_widths(config, {"heads": 2})[0], LayerWidth)
    with pytest.raises(WidthError, match="allowed keys: 'ffn', 'heads'"):
        resolve_widths(config, {"fnn": 8})
    generator = torch.Generator().manual_seed(0)
    draws = [sample_decoder_widths(config, generator) for _ in range(300)]
    for widths in draws:
        assert config.check_widths(widths) == widths
    ffn0, heads1 = [w[0].ffn for w in draws], [w[1].heads for w in draws]
    assert min(ffn0) <= 6 and max(ffn0) >= 50 and set(heads1) == {1, 2, 3, 4}
    assert sample_decoder_widths(config, torch.Generator().manual_seed(0)) == draws[0]
    low = ((32, 2), (32, 2), (32, 2))
    assert all(w.ffn >= 32 and w.heads >= 2 for w in sample_decoder_widths(config, generator, low))


def test_config_round_trips_through_json():
    config = make_config(ffn_widths=48, student_ffn_widths=8, student_heads=1)
    assert config.ffn_widths == (48, 48, 48) and config.head_dim == 8
    assert DecoderConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=re.escape("unknown decoder config fields ['n_layer']")):
        DecoderConfig.from_dict({**config.to_dict(), "n_layer": 2})


def test_save_and_load_round_trip_without_pickle(tmp_path):
    model, ids = make_model(), token_ids()
    standalone = extract_decoder(model, PARITY_WIDTHS["mix_ragged"])
    target = standalone.save(tmp_path / "mix")
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    assert load_file(str(target / "model.safetensors"))["blocks.0.mlp.fc.weight"].shape == (5, 32)
    saved = json.loads((target / "config.json").read_text())
    assert saved["ffn_widths"] == [5, 48, 17] and saved["heads"] == [3, 2, 4]
    assert saved["metadata"]["ta_widths"] == [[64, 4], [48, 4], [64, 4]]
    loaded = StandaloneDecoder.load(target)
    assert loaded.config == standalone.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), standalone(ids), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="is not a saved matta decoder"):
        StandaloneDecoder.load(tmp_path)


def test_hf_gpt2_export_round_trip(tmp_path):
    transformers = pytest.importorskip("transformers")
    model, ids = make_model(), token_ids()
    widths = ((24, 4), (24, 4), (24, 4))  # uniform, all heads: a shape GPT-2 can hold as is
    standalone = extract_decoder(model, widths)
    out = export_hf_gpt2(standalone, tmp_path / "hf")
    hf_config = json.loads((out / "config.json").read_text())
    assert (hf_config["n_head"], hf_config["n_inner"], hf_config["n_embd"]) == (4, 24, 32)
    hf = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    with torch.no_grad():
        expected = model(ids, widths)
        assert (hf(ids).logits - expected).abs().max().item() <= 1e-4
        # Padded export of a ragged Student: exact outputs, full-size shape.
        student = extract_decoder(model, model.config.student_widths)
        padded = transformers.GPT2LMHeadModel.from_pretrained(export_hf_gpt2(student, tmp_path / "pad", pad=True))
        assert (padded.eval()(ids).logits - model(ids, model.config.student_widths)).abs().max().item() <= 1e-4


def test_hf_gpt2_export_refuses_shapes_gpt2_cannot_hold(tmp_path):
    model = make_model()
    ragged = extract_decoder(model, PARITY_WIDTHS["mix_ragged"])
    with pytest.raises(HFExportError, match=r"different head counts \[3, 2, 4\].*different FFN widths \[5, 48, 17\]"):
        export_hf_gpt2(ragged, tmp_path / "ragged")
    narrow_heads = extract_decoder(model, ((16, 2), (16, 2), (16, 2)))
    message = "block 0 has 2 heads x head_dim 8 = 16 != d_model 32, but GPT-2 requires n_head * head_dim == n_embd"
    with pytest.raises(HFExportError, match=re.escape(message)):
        export_hf_gpt2(narrow_heads, tmp_path / "narrow")
    assert not (tmp_path / "ragged").exists() and not (tmp_path / "narrow").exists()


def test_dropout_acts_only_in_training_mode():
    model, ids = make_model(dropout=0.2), token_ids()
    student = model.config.student_widths
    model.train()
    first, second = model(ids, student), model(ids, student)
    assert not torch.allclose(first, second)
    (first.mean() + second.mean()).backward()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(ids, student), extract_decoder(model, student)(ids), rtol=0, atol=1e-5)
