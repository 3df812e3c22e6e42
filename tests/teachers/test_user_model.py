"""SafetensorsTeacher (a user's classifier as safetensors + JSON), MLflowTeacher without mlflow, make_teacher."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from matta_core.teachers import MiniLMEncoder, MLflowTeacher, SafetensorsTeacher, make_teacher
from tests.teachers.helpers import sample_texts, tiny_classifier

TEXTS = sample_texts(12)


def test_round_trip_gives_identical_logits_and_fingerprint(tmp_path) -> None:
    teacher = tiny_classifier(seed=0)
    teacher.save(str(tmp_path / "clf"))
    again = SafetensorsTeacher.load(str(tmp_path / "clf"))
    assert again.fingerprint() == teacher.fingerprint()
    np.testing.assert_array_equal(again.predict(TEXTS)["logits"], teacher.predict(TEXTS)["logits"])
    logits = teacher.predict(TEXTS)["logits"]
    assert logits.shape == (12, 5) and logits.dtype == np.float32


def test_fingerprint_changes_with_weights_and_config() -> None:
    a, b = tiny_classifier(seed=0), tiny_classifier(seed=1)
    assert a.fingerprint() != b.fingerprint()
    config = dict(a.config, features={"kind": "hashed_ngrams", "dim": 64, "ngram_range": [1, 1]})
    assert SafetensorsTeacher(a.tensors, config).fingerprint() != a.fingerprint()


def test_linear_classifier_on_hashed_ngrams_computes_what_the_config_says() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 32)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    config = {
        "format": "matta.safetensors_classifier",
        "version": 1,
        "num_classes": 3,
        "features": {"kind": "hashed_ngrams", "dim": 32},
        "layers": [{"weight": "w", "bias": "b"}],
    }
    teacher = SafetensorsTeacher({"w": w, "b": b}, config)
    x = teacher.features(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(teacher.predict(TEXTS)["logits"], x @ w.T + b, rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "format is 'other'"),
        ({"num_classes": 4}, "last layer outputs 5 values, config num_classes is 4"),
        ({"features": {"kind": "bag_of_words"}}, "features.kind is 'bag_of_words'; allowed: hashed_ngrams, minilm"),
        (
            {"layers": [{"weight": "fc9.weight", "bias": "fc1.bias"}]},
            r"layers\[0\].weight 'fc9.weight' is not a tensor",
        ),
        ({"layers": [{"weight": "fc2.weight", "bias": "fc2.bias"}]}, r"layers\[0\]: weight \[5, 16\].*input width 64"),
        (
            {"layers": [{"weight": "fc1.weight", "bias": "fc1.bias", "activation": "swish"}]},
            r"layers\[0\].activation is 'swish'; allowed: none, relu, tanh, sigmoid",
        ),
    ],
)
def test_invalid_configs_say_what_and_where(tmp_path, change: dict, message: str) -> None:
    good = tiny_classifier()
    folder = tmp_path / "clf"
    folder.mkdir()
    save_file(good.tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({**good.config, **change}))
    with pytest.raises(ValueError, match=message) as info:
        SafetensorsTeacher.load(str(folder))
    assert str(folder) in str(info.value)


def test_mlflow_teacher_without_mlflow_names_the_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    teacher = MLflowTeacher("models:/intent-teacher@champion", num_classes=77)  # constructing needs no mlflow
    assert teacher.output_spec.num_classes == 77
    with pytest.raises(ImportError, match=r"install mlflow==3\.17\.2"):
        teacher.fingerprint()
    with pytest.raises(ValueError, match=r"models:/\.\.\. or runs:/\.\.\."):
        MLflowTeacher("s3://bucket/model", num_classes=3)


def test_make_teacher_builds_each_kind_and_rejects_bad_specs(tmp_path) -> None:
    tiny_classifier().save(str(tmp_path / "clf"))
    assert isinstance(make_teacher({"kind": "safetensors", "path": str(tmp_path / "clf")}), SafetensorsTeacher)
    assert make_teacher({"kind": "minilm", "c": 3.0, "num_classes": 77}).output_spec.num_classes == 77
    assert isinstance(make_teacher({"kind": "mlflow", "model_uri": "runs:/abc/model", "num_classes": 3}), MLflowTeacher)

    with pytest.raises(ValueError, match="kind 'bert' is unknown; allowed: causal_lm, minilm, mlflow, safetensors"):
        make_teacher({"kind": "bert"})
    with pytest.raises(ValueError, match=r"kind 'causal_lm' is missing required field\(s\) \['model_path'\]"):
        make_teacher({"kind": "causal_lm", "k": 8})
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['C'\]; allowed: .*'c'"):
        make_teacher({"kind": "minilm", "C": 10})
    with pytest.raises(ValueError, match="must be a dict"):
        make_teacher("minilm")  # type: ignore[arg-type]


def test_classifier_over_minilm_features_is_identified_by_the_encoder_too() -> None:
    rng = np.random.default_rng(0)
    config = {
        "format": "matta.safetensors_classifier",
        "version": 1,
        "num_classes": 77,
        "features": {"kind": "minilm"},
        "layers": [{"weight": "head.weight", "bias": "head.bias"}],
    }
    tensors = {"head.weight": rng.normal(size=(77, 384)), "head.bias": np.zeros(77)}
    teacher = SafetensorsTeacher(tensors, config)
    assert teacher.output_spec.num_classes == 77 and len(teacher.fingerprint()) == 64
    assert teacher.features.identity()["encoder"] == MiniLMEncoder().fingerprint()
    assert not teacher.features.encoder.is_loaded  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"weight \[77, 32\].*input width 384"):
        SafetensorsTeacher({**tensors, "head.weight": rng.normal(size=(77, 32))}, config)
