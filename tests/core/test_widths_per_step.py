"""`train.widths_per_step`: the run config resolves which widths the train step trains every step."""

from __future__ import annotations

import pytest

from matta_core.config import ConfigError, PipelineConfig


def test_the_classifier_trains_every_extracted_width_by_default() -> None:
    config = PipelineConfig.load(overrides={"widths": [[1024], [256], [64], [32]]})
    assert config.train.widths_per_step == "extracted"
    assert config.train.loss_widths == [[1024], [256], [64], [32]]
    # What the train step builds from the section: the same list, as the trainer's TrainConfig.
    assert config.train.train_config().loss_widths == ((1024,), (256,), (64,), (32,))


def test_sampled_trains_sandwich_k_random_widths_instead() -> None:
    config = PipelineConfig.load(overrides={"train.widths_per_step": "sampled"})
    assert config.train.loss_widths is None and config.train.train_config().loss_widths is None


def test_mix_and_match_widths_travel_per_layer() -> None:
    config = PipelineConfig.load(overrides={"model.hidden_widths": [256, 128], "model.student_widths": [32, 32],
                                            "widths": [[256, 128], [256, 32], [32, 32]]})
    assert config.train.train_config().loss_widths == ((256, 128), (256, 32), (32, 32))


def test_the_resolved_list_follows_the_widths_not_a_stale_value() -> None:
    # A dumped config (show-config) carries the resolved list; edited widths replace it rather than keep it.
    dumped = PipelineConfig.load(overrides={"widths": [[1024], [64]]}).model_dump()
    dumped["widths"] = [[512], [64], [16]]
    assert PipelineConfig.parse(dumped).train.loss_widths == [[512], [64], [16]]


def test_causal_lm_samples_and_refuses_extracted_naming_the_field() -> None:
    config = PipelineConfig.load("configs/wiki_lm.yaml")
    assert config.train.widths_per_step == "sampled" and config.train.loss_widths is None
    with pytest.raises(ConfigError, match=r"train\.widths_per_step 'extracted' is built for the classifier family; "
                                          r"task 'causal_lm' samples .* set train\.widths_per_step: sampled"):
        PipelineConfig.load("configs/wiki_lm.yaml", {"train.widths_per_step": "extracted"})


def test_an_unknown_value_names_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"train\.widths_per_step: Input should be 'extracted' or 'sampled'"):
        PipelineConfig.load(overrides={"train.widths_per_step": "all"})
