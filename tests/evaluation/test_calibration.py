"""Temperature scaling: the fit recovers a known miscalibration, every written classifier carries its fitted
temperature, the servable model applies it, and the evaluation reports ECE before and after."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from matta_core.config import DataSection, ModelSection, TrainSection
from matta_core.evaluation.calibration import TEMPERATURE_BOUNDS, fit_temperature
from matta_core.evaluation.metrics import expected_calibration_error, nll
from matta_core.families.classifier.evaluate_step import evaluate_step
from matta_core.families.classifier.extract import load_extracted
from matta_core.families.classifier.extract_step import extract_step
from matta_core.families.classifier.prepare_step import prepare_step
from matta_core.families.classifier.train_step import train_step
from matta_core.serving.matta_text_classifier import ExtractedConfig, TextPredictor
from tests.data.helpers import banking_rows, write_csv


def _calibrated_sample(n: int = 4000, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true label distribution (labels drawn from it): calibrated at T = 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(n, classes))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    return logits, labels


@pytest.mark.parametrize("scale", [0.4, 1.0, 3.0])
def test_the_fit_undoes_a_known_over_or_under_confidence(scale: float) -> None:
    logits, labels = _calibrated_sample()
    fitted = fit_temperature(logits * scale, labels)  # logits * s need T = s to be calibrated again
    assert fitted == pytest.approx(scale, rel=0.1)
    assert fit_temperature(logits * scale, labels) == fitted  # deterministic
    if scale != 1.0:
        before = expected_calibration_error(logits * scale, labels)
        after = expected_calibration_error(logits * scale / fitted, labels)
        assert after < before / 2
        assert nll(logits * scale / fitted, labels) < nll(logits * scale, labels)


def test_bad_calibration_inputs_are_refused() -> None:
    logits, labels = _calibrated_sample(n=20)
    with pytest.raises(ValueError, match="needs \\[n, classes\\] logits and n labels"):
        fit_temperature(logits, labels[:-1])
    with pytest.raises(ValueError, match="NaN or infinity"):
        fit_temperature(np.full_like(logits, np.nan), labels)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.9"):
        fit_temperature(logits, labels + 10)
    assert TEMPERATURE_BOUNDS[0] <= fit_temperature(torch.as_tensor(logits), torch.as_tensor(labels)) \
        <= TEMPERATURE_BOUNDS[1]


def test_the_servable_config_keeps_its_temperature_and_refuses_a_bad_one() -> None:
    config = ExtractedConfig.from_dict({
        "format": "matta.standalone_classifier/v1", "num_buckets": 16, "embed_dim": 4, "hidden_widths": [8],
        "num_classes": 3, "num_dense_features": 0, "activation": "relu",
        "features": {"num_buckets": 16, "word_ngrams": [1, 1], "char_ngrams": [3, 3]},
    })
    assert config.temperature == 1.0  # a model saved before calibration existed serves as before
    warm = ExtractedConfig.from_dict({**config.to_dict(), "temperature": 1.7})
    assert warm.temperature == 1.7 and warm.to_dict()["temperature"] == 1.7
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        ExtractedConfig.from_dict({**config.to_dict(), "temperature": 0})


def test_every_written_width_and_baseline_is_calibrated_and_served_so(tmp_path: Path) -> None:
    # A tiny real run on a Banking77 sample: prepare -> train (with a KD-free baseline) -> extract -> evaluate.
    path = write_csv(tmp_path / "intents.csv", banking_rows()[::10][:900])
    data = DataSection(source=str(path))
    prepared, trained = str(tmp_path / "prepared"), str(tmp_path / "trained")
    prepare_step(data, prepared)
    model = ModelSection(hidden_widths=[64], student_widths=[16], embed_dim=16, num_buckets=2**12)
    train_step(prepared, None, trained, model, TrainSection(epochs=8, batch_size=64, baselines=["ce_only"],
                                                            num_threads=1), data, progress=False)
    result = extract_step(trained, [16], str(tmp_path / "model"), prepared, data)
    _, config = load_extracted(tmp_path / "model")
    _, baseline = load_extracted(Path(trained) / "baselines" / "ce_only")
    for saved in (config, baseline):
        assert saved.temperature != 1.0 and TEMPERATURE_BOUNDS[0] < saved.temperature < TEMPERATURE_BOUNDS[1]
        assert saved.metadata["calibration_rows"] > 0
    assert result["temperature"] == config.temperature

    # The servable model's probabilities are softmax(logits / T); its logits (and so its labels) are unchanged.
    predictor = TextPredictor(tmp_path / "model")
    texts = [row["text"] for row in banking_rows()[1::97][:8]]
    logits = torch.as_tensor(predictor.logits(texts))
    expected = torch.softmax(logits / config.temperature, dim=-1).numpy()
    np.testing.assert_allclose(predictor.probabilities(texts), expected, rtol=1e-6, atol=1e-7)

    record = evaluate_step(str(tmp_path / "model"), prepared, str(tmp_path / "evaluation"), data, measure_speed=False)
    saved_record = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert saved_record["temperature"] == config.temperature == record["temperature"]
    # Calibrated on validation, scored on test: the served probabilities' NLL is at least no worse on test.
    assert record["nll"] <= record["nll_uncalibrated"] + 0.02
    assert record["ece"] != record["ece_uncalibrated"]
