"""Each logged model runs the servable code it was logged with, even beside another model in the same process.

An A/B system loads ``@champion`` and ``@challenger`` side by side, and different matta versions may have logged
them. The pyfunc imports its own copy of the servable file under a name made from its content hash (not as one
top-level module on ``sys.path``, where the first model loaded would win), so each keeps its own code.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.extract import extract, extracted_config, save_extracted
from matta_core.families.classifier.model import NestedClassifier
from matta_core.tracking import log_standalone_model
from matta_core.tracking import models as tracking_models


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    config = ClassifierConfig(num_classes=3, hidden_widths=(8,), student_widths=(4,), embed_dim=4, min_width=4,
                              features={"num_buckets": 2**8})
    return save_extracted(extract(NestedClassifier(config), (4,)), extracted_config(config, (4,)), tmp_path / "m")


def test_two_models_keep_their_own_servable_code_in_one_process(
    model_dir: Path, sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow.set_tracking_uri(sqlite_uri)
    current = log_standalone_model(model_dir, "current", input_example_texts=["card lost"])
    # A "newer matta": the same servable file with one more line, logged as a second model.
    newer = tmp_path / "newer" / "matta_text_classifier.py"
    newer.parent.mkdir()
    shutil.copy(tracking_models.SERVABLE_FILE, newer)
    with newer.open("a") as f:
        f.write('\nSERVABLE_MARK = "newer"\n')
    monkeypatch.setattr(tracking_models, "SERVABLE_FILE", newer)
    other = log_standalone_model(model_dir, "newer", input_example_texts=["card lost"])

    loaded = [mlflow.pyfunc.load_model(uri) for uri in (current, other)]
    modules = [type(model.unwrap_python_model().predictor).__module__ for model in loaded]
    assert modules[0] != modules[1] and all(m.startswith("matta_text_classifier_") for m in modules)
    assert not hasattr(sys.modules[modules[0]], "SERVABLE_MARK")
    assert sys.modules[modules[1]].SERVABLE_MARK == "newer"
    frames = [model.predict(pd.DataFrame({"text": ["card lost", "top up"]})) for model in loaded]
    pd.testing.assert_frame_equal(frames[0], frames[1])
