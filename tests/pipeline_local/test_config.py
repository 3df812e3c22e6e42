"""The run configuration: defaults, overrides, and bad values rejected before anything runs."""

from __future__ import annotations

import pytest

from matta_core.config import ConfigError, PipelineConfig
from matta_core.training import TrainConfig


def test_defaults_are_valid_and_match_the_library_defaults():
    config = PipelineConfig()
    train = config.train.train_config()
    assert train.arm == "matta" and train.epochs == 15 and train.lr == TrainConfig.lr
    model = config.model.classifier_config(num_classes=77)
    assert model.hidden_widths == (1024,) and model.student_widths == (64,)
    assert all(len(w) == 1 for w in config.widths)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"widths": [[2048]]},
            "widths: Value error, entry 0 [2048]: layer blocks.0: asked width 2048, allowed 8..1024",
        ),
        ({"train": {"epochs": -1}}, "train.epochs: Input should be greater than 0"),
        ({"train": {"batch_size": 0}}, "train.batch_size: Input should be greater than 0"),
        ({"teacher": {"spec": {"kind": "gpt"}}}, "teacher.spec: Value error, kind 'gpt' unknown"),
        ({"trian": {}}, "trian: Extra inputs are not permitted"),
        ({"model": {"hidden_widths": [64]}, "widths": [[64], [128]]}, "entry 1 [128]: layer blocks.0: asked width 128"),
        ({"data": {"max_bad_fraction": 2}}, "data.max_bad_fraction: Input should be less than or equal to 1"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(data, message):
    with pytest.raises(ConfigError) as error:
        PipelineConfig.parse(data)
    assert message in str(error.value)


def test_file_and_dotted_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 3\nmodel:\n  hidden_widths: [256]\nwidths: [[256], [64]]\n")
    config = PipelineConfig.load(path, {"train.lr": 0.005, "data.limit_train_rows": 100})
    assert config.train.epochs == 3 and config.train.lr == 0.005 and config.data.limit_train_rows == 100
    assert config.model.hidden_widths == [256]


def test_missing_and_malformed_files_get_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        PipelineConfig.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        PipelineConfig.load(bad)
