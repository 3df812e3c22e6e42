"""A tiny, real training run: 200 Banking77 rows, a model of a few thousand parameters.

Imported by the training tests for its data and configs, and run as a script by the resume test:

    python tests/training/train_tiny.py --checkpoint-dir DIR --out FINAL.safetensors [--steps 30] [--sleep 0.05]

which trains (resuming from DIR if it holds checkpoints), writes the final weights to FINAL.safetensors, and prints
`start_step=<n>` so the caller can tell a resumed run from a fresh one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.torch import save_file

from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.trainer import train
from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer
from matta_core.training import Callback, TrainConfig

BANKING77 = Path("/work/shared/data/banking77")
NUM_BUCKETS = 2**10


def banking77_labels() -> list[str]:
    """Class names in label order: the sorted category list."""
    return sorted(json.loads((BANKING77 / "categories.json").read_text()))


def tiny_texts(rows: int = 200) -> tuple[list[str], np.ndarray]:
    """`rows` training texts spread over all 77 intents (every k-th row: the CSV is grouped by intent)."""
    frame = pd.read_csv(BANKING77 / "train.csv")
    frame = frame.iloc[:: len(frame) // rows].head(rows)
    index = {name: i for i, name in enumerate(banking77_labels())}
    return frame["text"].tolist(), frame["category"].map(index).to_numpy(np.int64)


def tiny_model_config(**overrides: object) -> ClassifierConfig:
    """Two nested layers (so per-layer errors can name a layer), 77 classes, 2^10 hashed buckets."""
    settings: dict = dict(
        num_classes=77, hidden_widths=(16, 12), student_widths=(4, 4), embed_dim=8, min_width=2,
        features=FeaturizerConfig(num_buckets=NUM_BUCKETS),
    )
    settings.update(overrides)
    return ClassifierConfig(**settings)


def fake_teacher(labels: np.ndarray, num_classes: int = 77, seed: int = 0) -> np.ndarray:
    """Confident-but-imperfect Teacher logits: the true class boosted, plus noise that ranks the rest."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, size=(len(labels), num_classes)).astype(np.float32)
    logits[np.arange(len(labels)), labels] += 4.0
    return logits


def tiny_data(rows: int = 200, with_labels: bool = True, with_teacher: bool = True) -> TrainingData:
    texts, labels = tiny_texts(rows)
    featurizer = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=NUM_BUCKETS))
    return TrainingData.from_texts(
        featurizer, texts, labels if with_labels else None, fake_teacher(labels) if with_teacher else None,
        num_classes=77,
    )


def tiny_train_config(**overrides: object) -> TrainConfig:
    settings: dict = dict(steps=20, batch_size=32, progress=False, num_threads=1, log_every=5)
    settings.update(overrides)
    return TrainConfig(**settings)


class _Sleep(Callback):
    """Slows each step down, so the resume test has time to kill the process between checkpoints."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        time.sleep(self.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    config = tiny_train_config(steps=args.steps, checkpoint_every=args.checkpoint_every, keep_checkpoints=2)
    model, result = train(tiny_model_config(), tiny_data(), config, checkpoint_dir=args.checkpoint_dir,
                          callbacks=[_Sleep(args.sleep)] if args.sleep else ())
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out))
    print(f"start_step={result.start_step}", flush=True)


if __name__ == "__main__":
    main()
