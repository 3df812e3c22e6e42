"""End to end on real data: a Banking77 subset, a real Teacher, MatTA training, then extraction at several widths.

Teacher: TF-IDF (word 1-2-grams + char 3-5-grams) and a scikit-learn logistic regression fitted on the training
subset; its decision function gives the logits. The nested model must learn (loss falls) and every extracted
width — TA, Student, two widths in between, one below the Student — must score far above chance (1/77 = 1.3%).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.extract import expected_param_count, extract
from matta_core.families.classifier.trainer import train
from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer
from matta_core.training import HistoryCallback, TrainConfig

BANKING77 = Path("/work/shared/data/banking77")
TRAIN_ROWS, TEST_ROWS = 3000, 1000


def load_subset(split: str, rows: int, classes: dict[str, int]) -> tuple[list[str], np.ndarray]:
    frame = pd.read_csv(BANKING77 / f"{split}.csv").sample(n=rows, random_state=0)
    return frame["text"].tolist(), frame["category"].map(classes).to_numpy(np.int64)


def fit_teacher(texts: list[str]) -> tuple[TfidfVectorizer, TfidfVectorizer]:
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)
    words.fit(texts)
    chars.fit(texts)
    return words, chars


@pytest.mark.slow
def test_matta_on_banking77_subset_gives_usable_models_at_every_width() -> None:
    started = time.perf_counter()
    classes = {name: i for i, name in enumerate(sorted(json.loads((BANKING77 / "categories.json").read_text())))}
    train_texts, train_labels = load_subset("train", TRAIN_ROWS, classes)
    test_texts, test_labels = load_subset("test", TEST_ROWS, classes)

    words, chars = fit_teacher(train_texts)
    tfidf = sp.hstack([words.transform(train_texts), chars.transform(train_texts)]).tocsr()
    with warnings.catch_warnings():
        # saga stopped at max_iter: a few more test-accuracy tenths are not worth 10 s here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        teacher = LogisticRegression(C=10.0, solver="saga", max_iter=30, tol=1e-3, random_state=0)
        teacher.fit(tfidf, train_labels)
    teacher_logits = teacher.decision_function(tfidf).astype(np.float32)
    test_tfidf = sp.hstack([words.transform(test_texts), chars.transform(test_texts)]).tocsr()
    teacher_accuracy = float((teacher.predict(test_tfidf) == test_labels).mean())
    teacher_seconds = time.perf_counter() - started

    features = FeaturizerConfig(num_buckets=2**16)
    model_config = ClassifierConfig(num_classes=77, hidden_widths=(256,), student_widths=(32,), embed_dim=64,
                                    min_width=8, features=features)
    featurizer = HashedNgramFeaturizer(features)
    data = TrainingData.from_texts(featurizer, train_texts, train_labels, teacher_logits, num_classes=77)
    # One thread: on a shared 2-core runner, two OpenMP threads fighting other jobs make small ops ~10x slower.
    config = TrainConfig(arm="matta", epochs=6, batch_size=64, progress=False, log_every=10, num_threads=1)
    history = HistoryCallback()
    model, result = train(model_config, data, config, callbacks=[history])

    totals = [record["total"] for record in history.records]
    tenth = max(1, len(totals) // 10)
    first, last = float(np.mean(totals[:tenth])), float(np.mean(totals[-tenth:]))
    assert last < first, f"loss did not fall: first 10% {first:.3f}, last 10% {last:.3f}"

    test_batch = featurizer.transform(test_texts).batch(torch.arange(TEST_ROWS))
    accuracy = {}
    for widths in [(256,), (128,), (64,), (32,), (16,)]:  # TA, two in between, Student, below the Student
        standalone = extract(model, widths)
        assert sum(p.numel() for p in standalone.parameters()) == expected_param_count(model_config, widths)
        with torch.no_grad():
            logits = standalone(test_batch.ids, test_batch.offsets, test_batch.counts)
        accuracy[widths[0]] = float((logits.argmax(dim=1).numpy() == test_labels).mean())

    seconds = time.perf_counter() - started
    print(f"\nBanking77 {TRAIN_ROWS}/{TEST_ROWS} rows: teacher accuracy {teacher_accuracy:.3f} "
          f"({teacher_seconds:.1f} s); MatTA {result.steps} steps in {result.wall_seconds:.1f} s; "
          f"loss {first:.3f} -> {last:.3f}; accuracy by width {accuracy}; total {seconds:.1f} s")
    for width, value in accuracy.items():
        assert value > 0.5, f"width {width}: test accuracy {value:.3f} (chance is 0.013)"
