"""The run configuration: defaults, overrides, and bad values rejected before anything runs."""

from __future__ import annotations

import pytest

from matta_core.config import ConfigError, PipelineConfig
from matta_core.release.config import ReleaseConfig
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
        ({"release": {"enabeld": False}}, "release.enabeld: Extra inputs are not permitted"),
        ({"release": {"gate": {"min_improvement": 2}}},
         "release.gate.min_improvement: Input should be less than or equal to 1 (got 2)"),
        ({"release": {"size_classes": [{"name": "XS", "max_dense_params": 10}]}},
         "release.size_classes.0.name: Value error, size class name 'XS' must be 1-16 lower-case letters/digits"),
        ({"release": {"size_classes": [{"name": "s", "max_params": 0}]}},
         "release.size_classes.0.max_params: Input should be greater than 0"),
        ({"release": {"size_classes": [{"name": "s"}, {"name": "s"}]}},
         "release.size_classes: Value error, size class 's' is declared twice"),
        ({"release": {"model_prefix": "bad prefix"}}, "release.model_prefix: String should match pattern"),
        ({"train": {"baselines": ["kd"]}},
         "release: Value error, baseline_arm 'ce_only' is not trained (train.baselines = ['kd']): add it to "
         "train.baselines, or set release.enabled: false"),
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


def test_release_section_defaults_switch_and_yaml(tmp_path):
    release = PipelineConfig().release
    assert release.enabled and release.baseline_arm == "ce_only"
    assert [c.name for c in release.size_classes] == ["xs", "s", "m"]
    assert ReleaseConfig.parse(release) is release  # what release_step takes, as is
    # Off, the release needs no baseline; the message of a bad config does not dump the whole section.
    off = PipelineConfig.parse({"train": {"baselines": ["kd"]}, "release": {"enabled": False}})
    assert not off.release.enabled
    with pytest.raises(ConfigError) as error:
        PipelineConfig.parse({"train": {"baselines": []}})
    assert "ReleaseSection(" not in str(error.value)

    path = tmp_path / "run.yaml"
    path.write_text("release:\n  model_prefix: bank\n  size_classes:\n    - {name: xs, max_dense_params: 6000}\n"
                    "  gate: {min_improvement: -0.01, floors: {accuracy: 0.8}}\n")
    config = PipelineConfig.load(path, {"release.handoff.baseline_rate": 0.2})
    assert config.release.model_prefix == "bank" and config.release.size_classes[0].max_dense_params == 6000
    assert config.release.gate.floors == {"accuracy": 0.8} and config.release.handoff.baseline_rate == 0.2
    # The pipeline parameter round-trips through JSON, as each step reads it.
    assert type(config.release).model_validate_json(config.release.model_dump_json()) == config.release
