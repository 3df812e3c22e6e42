"""`TrainConfig.loss_widths`: the loss at fixed widths every step in place of the sandwich sampler (MatTA only)."""

from __future__ import annotations

import json

import pytest
import torch

from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.loss import matta_loss
from matta_core.families.classifier.trainer import ClassifierStep, train
from matta_core.training import TrainConfig
from tests.core.test_lm_training import tiny_decoder, tiny_train
from tests.training.train_tiny import tiny_data, tiny_model_config, tiny_train_config


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return tiny_data()


def test_the_loss_is_computed_at_every_listed_width_besides_ta_and_student(data: TrainingData) -> None:
    config = tiny_model_config()  # TA (16, 12), Student (4, 4)
    train_config = tiny_train_config(loss_widths=[[8, 6], [16, 12], [10, 3], [4, 4]], sandwich_k=5)
    step = ClassifierStep(config, train_config, data)
    # The TA and the Student have their own terms: listing them adds no second one; sandwich_k is not used.
    assert step.fixed_widths == [(8, 6), (10, 3)]
    torch.manual_seed(0)
    model = step.build_model()
    batch = data.batch(torch.arange(32))
    got = step.loss(model, batch, 0.5, torch.Generator().manual_seed(0))
    hidden = model.embed(batch.features)
    expected = matta_loss(
        model.head_forward(hidden, config.ta_widths), model.head_forward(hidden, config.student_widths),
        batch.teacher_logits, batch.labels, train_config.loss, 0.5,
        [model.head_forward(hidden, (8, 6)), model.head_forward(hidden, (10, 3))])
    assert torch.allclose(got.total, expected.total, rtol=0, atol=1e-6)
    assert got.parts["sampled"] == pytest.approx(expected.parts["sampled"], abs=1e-6)


def test_only_the_ta_and_the_student_listed_equals_no_sandwich(data: TrainingData) -> None:
    config = tiny_model_config()
    fixed, _ = train(config, data, tiny_train_config(loss_widths=[list(config.ta_widths), list(config.student_widths)]))
    none, _ = train(config, data, tiny_train_config(sandwich_k=0))
    sampled, _ = train(config, data, tiny_train_config())
    for name, tensor in fixed.state_dict().items():
        assert torch.equal(tensor, none.state_dict()[name]), name
    assert any(not torch.equal(t, sampled.state_dict()[n]) for n, t in fixed.state_dict().items())


def test_one_number_means_that_width_in_every_layer(data: TrainingData) -> None:
    step = ClassifierStep(tiny_model_config(), tiny_train_config(loss_widths=[6]), data)
    assert step.fixed_widths == [(6, 6)]


def test_a_width_that_does_not_fit_names_the_field(data: TrainingData) -> None:
    with pytest.raises(ValueError, match=r"train\.loss_widths: \[20, 4\] does not fit the model: .*blocks\.0"):
        train(tiny_model_config(), data, tiny_train_config(loss_widths=[[20, 4]]))


def test_baselines_ignore_it(data: TrainingData) -> None:
    model, result = train(tiny_model_config(), data, tiny_train_config(arm="kd", loss_widths=[[8, 6]]))
    assert result.steps == 20 and model.config.ta_widths == (4, 4)


@pytest.mark.parametrize("value", [[], [0], [[4, -1]], [[]], ["8"], [True]])
def test_bad_values_are_refused_with_what_is_allowed(value: object) -> None:
    with pytest.raises(ValueError, match="loss_widths must be a non-empty list of widths"):
        tiny_train_config(loss_widths=value)


def test_round_trips_and_is_absent_from_the_record_when_unused() -> None:
    config = tiny_train_config(loss_widths=[[8, 6], [10, 3]])
    record = json.loads(json.dumps(config.to_dict()))
    assert record["loss_widths"] == [[8, 6], [10, 3]]
    assert TrainConfig.from_dict(record) == config
    # Unused, the field is not written: a checkpoint written before it existed compares equal on resume.
    assert "loss_widths" not in tiny_train_config().to_dict()


def test_the_decoder_family_refuses_it() -> None:
    from matta_core.families.decoder.train_config import LMOptimConfig
    from matta_core.families.decoder.trainer import DecoderStep

    with pytest.raises(ValueError, match=r"loss_widths .* classifier family only"):
        DecoderStep(tiny_decoder(), tiny_train(loss_widths=[[8]]), LMOptimConfig())
