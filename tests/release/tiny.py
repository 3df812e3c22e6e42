"""Real tiny models for the release tests: 4 Banking77 intents, a 16-wide TA with an 8-wide Student.

Trained for a few steps on the real rows from the offline mirror (fake but plausible Teacher logits: the true class
boosted), extracted at widths 16 and 8 and saved as standalone folders, each with its evaluation record. Three
"pipeline runs" differ only in their training budget, which gives a medium run, a worse one and a better one; the
``ce_only`` baseline is trained for two steps (near chance), as a weak Student-alone reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.evaluate import evaluate_model
from matta_core.families.classifier.extract import extract, extracted_config, save_extracted
from matta_core.families.classifier.trainer import train
from matta_core.features import HashedNgramFeaturizer
from matta_core.release.rows import EvalRows
from matta_core.release.size_classes import SizeClass
from matta_core.training import TrainConfig
from tests.mirror import BANKING77_DIR

LABELS = ("card_arrival", "exchange_rate", "pin_blocked", "top_up_failed")
CONFIG = ClassifierConfig(num_classes=4, hidden_widths=(16,), student_widths=(8,), embed_dim=8, min_width=4,
                          features={"num_buckets": 2**10})
WIDTHS = ((16,), (8,))
#: Dense params: width 16 -> 212, width 8 -> 108. So "xs" takes the 8-wide Student, "s" the 16-wide TA.
SIZE_CLASSES = [SizeClass(name="xs", max_dense_params=120), SizeClass(name="s", max_dense_params=250)]
#: Training steps of each simulated pipeline run.
RUN_STEPS = {"medium": 15, "worse": 3, "good": 60}


@dataclass
class TinyRun:
    """One simulated pipeline run: model folders by width name, their evaluation records, the baseline."""

    name: str
    model_dirs: dict[str, str] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)


def _frame(split: str) -> pd.DataFrame:
    frame = pd.read_csv(BANKING77_DIR / f"{split}.csv")
    return frame[frame["category"].isin(LABELS)].reset_index(drop=True)


def load_test_rows() -> EvalRows:
    """The 160 test rows of the 4 intents (40 each)."""
    frame = _frame("test")
    return EvalRows(tuple(frame["text"]), tuple(frame["category"]))


def _training_data(featurizer: HashedNgramFeaturizer, with_teacher: bool) -> TrainingData:
    frame = _frame("train")
    labels = frame["category"].map({name: i for i, name in enumerate(LABELS)}).to_numpy(np.int64)
    teacher = np.full((len(labels), len(LABELS)), -1.0, dtype=np.float32)
    teacher[np.arange(len(labels)), labels] = 3.0
    return TrainingData.from_texts(featurizer, frame["text"].tolist(), labels, teacher if with_teacher else None,
                                   num_classes=len(LABELS))


def _evaluate(model_dir: Path, name: str, arm: str, rows: EvalRows) -> dict[str, Any]:
    from matta_core.families.classifier.extract import load_extracted

    model, config = load_extracted(model_dir)
    features = HashedNgramFeaturizer(config.features).transform(list(rows.texts))
    labels = [LABELS.index(label) for label in rows.labels]
    record = evaluate_model(model, features, labels, name=name, latency_examples=30).to_dict()
    return {**record, "arm": arm, "model_dir": str(model_dir)}


def build_run(name: str, steps: int, out: Path, rows: EvalRows) -> TinyRun:
    """Train the nested model for `steps`, extract and evaluate every width of `WIDTHS`."""
    featurizer = HashedNgramFeaturizer(CONFIG.features)
    model, _ = train(CONFIG, _training_data(featurizer, True),
                     # lr pinned: these fixtures were sized (steps per run) at this rate, not at the library default.
                     TrainConfig(steps=steps, batch_size=32, lr=1e-2, progress=False, num_threads=1))
    run = TinyRun(name)
    for widths in WIDTHS:
        width_name = ("ta-" if widths == CONFIG.hidden_widths else "student-") + "x".join(map(str, widths))
        folder = save_extracted(extract(model, widths), extracted_config(CONFIG, widths, LABELS).with_metadata(
            name=width_name, arm="matta"), out / name / width_name)
        run.model_dirs[width_name] = str(folder)
        run.records.append(_evaluate(folder, width_name, "matta", rows))
    return run


def build_baseline(out: Path, rows: EvalRows) -> tuple[str, dict[str, Any]]:
    """The Student alone on labels (``ce_only``), 2 steps: a weak reference, as on a class's first release."""
    featurizer = HashedNgramFeaturizer(CONFIG.features)
    model, _ = train(CONFIG, _training_data(featurizer, False),
                     TrainConfig(arm="ce_only", steps=2, batch_size=32, lr=1e-2, progress=False, num_threads=1))
    folder = save_extracted(extract(model, CONFIG.student_widths),
                            extracted_config(CONFIG.sub_config(CONFIG.student_widths), CONFIG.student_widths,
                                             LABELS).with_metadata(name="ce_only", arm="ce_only"),
                            out / "baselines" / "ce_only")
    return str(folder), _evaluate(folder, "ce_only", "ce_only", rows)
