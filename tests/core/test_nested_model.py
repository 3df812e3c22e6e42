"""The nested classifier: slicing semantics, width validation, and extraction parity."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.extract import (
    expected_param_count,
    extract,
    extracted_config,
    load_extracted,
    save_extracted,
)
from matta_core.families.classifier.model import NestedClassifier
from matta_core.families.classifier.model_io import load_nested, save_nested
from matta_core.features import HashedNgramFeaturizer, inverse_document_frequency
from matta_core.features.batch import FeatureError
from matta_core.nested import NestedLinear, WidthError, sample_widths

TEXTS = [
    "I still have not received my new card",
    "How do I top up my account with a cheque?",
    "why was I charged a fee for my transfer",
    "my card payment was declined at the shop",
    "",  # an empty bag must still give finite logits
    "Can I change my PIN at an ATM?",
]


def make_model(dense: int = 0, seed: int = 0) -> tuple[NestedClassifier, object]:
    torch.manual_seed(seed)
    config = ClassifierConfig(
        num_classes=5,
        hidden_widths=(48, 32, 24),
        student_widths=(12, 8, 8),
        embed_dim=16,
        num_dense_features=dense,
        min_width=4,
        features={"num_buckets": 2**10},
    )
    featurizer = HashedNgramFeaturizer(config.features)
    dense_values = np.random.default_rng(0).normal(size=(len(TEXTS), dense)).astype(np.float32) if dense else None
    features = featurizer.transform(TEXTS, dense_values)
    model = NestedClassifier(config)
    model.set_idf(torch.from_numpy(inverse_document_frequency(features, config.features.num_buckets)))
    return model.eval(), features


PARITY_WIDTHS = [
    (48, 32, 24),  # TA
    (12, 8, 8),  # Student
    (48, 8, 24),  # Mix'n'Match: wide, narrow, wide
    (4, 32, 4),
    (30, 20, 10),
    (4, 4, 4),  # narrowest allowed
]


@pytest.mark.parametrize("dense", [0, 3])
@pytest.mark.parametrize("widths", PARITY_WIDTHS)
def test_extracted_model_matches_nested_model_at_its_widths(widths, dense):
    model, features = make_model(dense)
    batch = features.batch(range(len(TEXTS)))
    with torch.no_grad():
        nested = model(batch, widths)
        standalone = extract(model, widths)
        alone = standalone(batch.ids, batch.offsets, batch.counts, batch.dense)
    assert nested.shape == (len(TEXTS), 5)
    assert torch.isfinite(nested).all()
    assert (alone - nested).abs().max().item() <= 1e-5
    n_params = sum(p.numel() for p in standalone.parameters())
    assert n_params == expected_param_count(model.config, widths)
    # The copy owns its tensors: changing it must not touch the TA.
    assert all(p.data_ptr() != q.data_ptr() for p in standalone.parameters() for q in model.parameters())


def test_param_count_follows_the_widths_by_hand():
    model, _ = make_model()
    # embedding 1024*16, blocks 16*12+12, 12*8+8, 8*8+8, head 8*5+5
    by_hand = 1024 * 16 + (16 * 12 + 12) + (12 * 8 + 8) + (8 * 8 + 8) + (8 * 5 + 5)
    assert expected_param_count(model.config, (12, 8, 8)) == by_hand


def test_narrow_widths_multiply_smaller_matrices_not_masked_ones():
    layer = NestedLinear(64, 32)
    x = torch.randn(3, 10)
    y = layer(x, 7)
    assert y.shape == (3, 7)
    torch.testing.assert_close(y, x @ layer.weight[:7, :10].T + layer.bias[:7])
    # Gradients reach only the slice that ran.
    y.sum().backward()
    assert layer.weight.grad[7:].abs().sum() == 0 and layer.weight.grad[:, 10:].abs().sum() == 0
    assert layer.weight.grad[:7, :10].abs().sum() > 0


def test_prefix_property_student_is_a_slice_of_the_ta():
    """Changing weights outside the Student's slice leaves the Student's outputs unchanged."""
    model, features = make_model()
    batch = features.batch(range(len(TEXTS)))
    with torch.no_grad():
        before = model(batch, model.config.student_widths)
        model.blocks[0].weight[12:] += 5.0
        model.blocks[1].weight[8:, :] -= 3.0
        model.head.weight[:, 8:] *= 7.0
        after = model(batch, model.config.student_widths)
        ta_after = model(batch)
    torch.testing.assert_close(before, after)
    assert not torch.allclose(ta_after, model(batch, (12, 8, 8)))


@pytest.mark.parametrize(
    ("widths", "message"),
    [
        ((49, 32, 24), "layer blocks.0: asked width 49, allowed 4..48"),
        ((48, 3, 24), "layer blocks.1: asked width 3, allowed 4..32"),
        ((48, 32), "has 2 entries but the model has 3 nestable layers"),
        ((48, 32, 24.5), "layer blocks.2: width 24.5 is not an integer"),
        (48, "one integer per layer"),
    ],
)
def test_bad_widths_name_the_layer_and_what_is_allowed(widths, message):
    model, features = make_model()
    batch = features.batch([0, 1])
    with pytest.raises(WidthError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model(batch, widths)
    with pytest.raises(WidthError, match=message.replace("(", r"\(").replace(")", r"\)")):
        extract(model, widths)


def test_student_wider_than_ta_is_rejected_in_the_config():
    with pytest.raises(WidthError, match=re.escape("layer blocks.0: asked width 128, allowed 8..64")):
        ClassifierConfig(num_classes=3, hidden_widths=(64,), student_widths=(128,))


def test_empty_batch_and_nan_features_get_clear_errors():
    model, features = make_model(dense=3)
    with pytest.raises(FeatureError, match="empty batch"):
        model(features.batch([]))
    batch = features.batch([0, 1, 2])
    batch.dense[1, 2] = float("nan")
    with pytest.raises(FeatureError, match="dense feature column 2 of example 1 in the batch is nan"):
        model(batch)


def test_out_of_range_ngram_ids_get_a_clear_error():
    model, features = make_model()
    batch = features.batch([0, 1])
    batch.ids[0] = 5000
    with pytest.raises(FeatureError, match=r"n-gram id out of range .*allowed 0..1023"):
        model(batch)


def test_sampled_widths_cover_the_range_and_stay_valid():
    model, _ = make_model()
    slots = model.config.width_slots()
    generator = torch.Generator().manual_seed(0)
    draws = [sample_widths(slots, generator) for _ in range(400)]
    for widths in draws:
        model.check_widths(widths)
    first_layer = [w[0] for w in draws]
    assert min(first_layer) <= 6 and max(first_layer) >= 40  # both ends are visited
    again = [sample_widths(slots, torch.Generator().manual_seed(0)) for _ in range(1)]
    assert again[0] == draws[0]  # reproducible from the seed


def test_save_and_load_round_trip_without_pickle(tmp_path):
    model, features = make_model(dense=3)
    widths = (30, 20, 10)
    standalone = extract(model, widths)
    config = extracted_config(model.config, widths, labels=tuple("abcde"))
    target = save_extracted(standalone, config, tmp_path / "w30")
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    # Plain safetensors + JSON: readable without matta or pickle.
    tensors = load_file(str(target / "model.safetensors"))
    assert tensors["blocks.0.weight"].shape == (30, 19)
    assert json.loads((target / "config.json").read_text())["hidden_widths"] == [30, 20, 10]
    loaded, loaded_config = load_extracted(target)
    assert loaded_config == config
    batch = features.batch(range(len(TEXTS)))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(batch.ids, batch.offsets, batch.counts, batch.dense),
            standalone(batch.ids, batch.offsets, batch.counts, batch.dense),
        )
    # Saving again replaces the folder whole and leaves no staging litter.
    save_extracted(standalone, config, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w30"]


def test_loading_builds_around_the_saved_tensors_without_a_throwaway_initialisation(tmp_path):
    """`load_nested`, `load_extracted` and `extract` build their modules on the meta device and hand them the
    tensors: no random initialisation (a normal draw over the whole embedding table) to overwrite. The loaded
    weights are exactly the saved ones, on the CPU, as trainable as before, and the global RNG is not drawn from,
    which an initialisation would do."""
    model, features = make_model(dense=3)
    widths = (30, 20, 10)
    save_nested(model, tmp_path / "nested")
    save_extracted(extract(model, widths), extracted_config(model.config, widths), tmp_path / "w30")
    rng = torch.get_rng_state()
    nested = load_nested(tmp_path / "nested")
    standalone, _ = load_extracted(tmp_path / "w30")
    cut = extract(nested, widths)
    assert torch.equal(torch.get_rng_state(), rng)

    for loaded, reference in ((nested, model), (standalone, cut)):
        state, expected = loaded.state_dict(), reference.state_dict()
        assert state.keys() == expected.keys()
        for name, tensor in state.items():
            assert tensor.device.type == "cpu" and tensor.is_contiguous(), name
            assert torch.equal(tensor, expected[name]), name
        assert all(p.requires_grad for p in loaded.parameters())
        assert not loaded.training
    batch = features.batch(range(len(TEXTS)))
    with torch.no_grad():
        assert torch.equal(nested(batch, widths), model(batch, widths))
        assert torch.equal(standalone(batch.ids, batch.offsets, batch.counts, batch.dense),
                           cut(batch.ids, batch.offsets, batch.counts, batch.dense))
    # Strict: a state dict that misses a tensor is refused, not left on the meta device.
    partial = {k: v for k, v in cut.state_dict().items() if k != "head.bias"}
    with pytest.raises(RuntimeError, match=r"Missing key.*head\.bias"):
        extracted_config(model.config, widths).build(weights=partial)


def test_loading_a_folder_that_is_not_a_model_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a saved matta model"):
        load_extracted(tmp_path)


def test_config_round_trips_and_rejects_unknown_fields():
    model, _ = make_model()
    data = model.config.to_dict()
    assert ClassifierConfig.from_dict(json.loads(json.dumps(data))) == model.config
    with pytest.raises(ValueError, match=r"unknown classifier config fields \['hiden_widths'\]"):
        ClassifierConfig.from_dict({**data, "hiden_widths": [3]})
