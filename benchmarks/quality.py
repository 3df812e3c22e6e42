"""Quality and serving-cost benchmark: MatTA against its baselines on Banking77, at an equal training budget.

For every Student width of a declared set, trained on the train split and scored on the official TEST split, with
the cached MiniLM Teacher:

- `ce_only`: the Student alone, on labels;  `kd`: the Student alone, distilled from the Teacher (no TA);
- `matta`: ONE run (TA + Student + sandwich-sampled widths); every width is extracted, and the TA too;
- `matta_equal_compute`: the same single run given the analytic training FLOPs (`train_flops`) of all the per-width
  `kd` runs of its regime together (more or fewer epochs than `matta`: the multiplier is computed before any run
  starts, from the training split's mean n-grams, and recorded in `equal_compute`);
- `matta_separate`: one MatTA run per width, with that width as the Student;
- `ce_only+shampoo`, `matta+shampoo`: the same with Shampoo for the dense parameters (tests "super-additivity");
- references: the Teacher itself and TF-IDF (word + char n-grams) + logistic regression;
- regimes (default run only) where a TA might help more: a stronger Teacher (MiniLM x TF-IDF ensemble), very
  narrow widths, a small hashed table, and `nested`: the embedding nests too (the library's small-class setting,
  `student_embed_dim` 32, `min_embed_dim` 16), so a narrow width ships a narrow table.

The Student of a single run is the narrowest width (`Regime.student_width` changes it); with a nested embedding
it reads `student_embed_dim` dims and wider widths more (`ClassifierConfig.embed_dim_for`). In `nested` that makes
widths 16, 32, 64, 128, 256, 512 and the TA read 32, 40, 51, 64, 81, 102 and 128 dims: not the schedule of the
tuning round that chose the setting (Student 64 at 32 dims; `student_width=64` would give it), kept so that every
regime follows one convention. A baseline at width w is built as the single run's width w is extracted
(`baseline_config`): the same embedding dims and parameters, so the arms compare models of one shape at every
width. (`matta_separate` makes each width its own Student, so nested, its widths read `student_embed_dim` dims:
another shape; the full run has no nested `matta_separate`.)

Every record is of the model that would be SERVED, made as the pipeline's extract step makes it: the width is
extracted (float32), compacted (int8 rows, only the buckets the training split touches: `compact`), and given a
temperature fitted on the validation split. Accuracy, macro-F1, NLL and ECE (after calibration; `*_uncalibrated`
before) are that model's on the test split; `test_accuracy_float32` keeps the float32 extraction's accuracy beside
it, so what compaction costs stays visible. Baselines (`ce_only`, `kd`) are served the same way, at their width.

Serving cost (`serving` in the report, on every summary row): the first seed's served models are saved (under
`--work-dir`, a fresh folder per run); after all training, one pass in the main process, one thread, loads each
as serving does (`TextPredictor`: `load_classifier` + the serving featuriser) and measures bytes on disk, resident
memory after load (`classifier_resident_bytes`: a fork of a warm process), batch-1 latency p50/p95 and batch-256
examples/s (model calls on featurised test rows), and raw text -> label examples/s at batch 256 (featurisation
included) beside the TF-IDF + LR pipeline. Timings run side by side: each round times every model once, in
rotating order, and the figures are medians / percentiles over rounds. On a machine shared with other jobs, load
drifts; interleaving makes the drift hit every model alike, so ratios between models stay meaningful even when
absolute numbers move.

Every run of every arm uses the same steps (but `matta_equal_compute`), batch size, learning rate and, per seed,
the same initialisation seed and data order (`BatchOrder(seed)`); runs execute in `--workers` processes, one
torch thread each.

    .venv/bin/python benchmarks/quality.py [--quick] [--out DIR] [--mirror-dir DIR] [--workers 2]

Writes `quality_banking77.json` (records in `runs`, summary tables, `serving`, `equal_compute`, `goals`), `.md`
and `.png` into `--out` (default `benchmarks/results`). `--quick` (CI) shrinks data, widths, seeds, epochs and
timing rounds, with a nested embedding and every arm, to run in a few minutes: its numbers check the plumbing,
not the method.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
STEM = "quality_banking77"
NUM_CLASSES = 77
# Single-run arms train every width at once; per-width arms train one model per width.
SINGLE_RUN_ARMS = ("matta", "matta+shampoo", "matta_equal_compute")
ARM_ORDER = ("ce_only", "ce_only+shampoo", "kd", "matta_separate", "matta", "matta_equal_compute", "matta+shampoo")
# Arms trained with the MatTA loss (the TA route): the size-class goal accepts a width served by any of them.
MATTA_ARMS = ("matta", "matta_equal_compute", "matta+shampoo", "matta_separate")
# Arm -> the trainer's arm (TrainConfig.arm); the rest is the arm's own name (before any "+optimizer").
BASE_ARM = {"matta_separate": "matta", "matta_equal_compute": "matta"}
# How a width is served (the extract step's defaults): int8 rows, the training split's buckets only.
SERVED_DTYPE = "int8"
THROUGHPUT_BATCH_SIZE = 256
# The size class of issue 15's first goal, in bytes on disk.
SMALL_CLASS_BYTES = 2_000_000
# The summary columns a serving measurement fills (None on rows without a saved model).
SERVING_KEYS = ("bytes_on_disk", "resident_bytes", "latency_p50_ms", "latency_p95_ms", "examples_per_s_batch256",
                "text_to_label_examples_per_s")


@dataclass(frozen=True)
class Regime:
    """One comparison setting: which Teacher, which model sizes, which widths and arms."""

    name: str
    widths: tuple[int, ...]
    arms: tuple[str, ...]
    teacher: str = "minilm"
    ta_width: int = 1024
    num_buckets: int = 2**18
    embed_dim: int = 128
    min_width: int = 8
    # Nested embedding (`ClassifierConfig.student_embed_dim`): None = every width reads all `embed_dim` dims.
    student_embed_dim: int | None = None
    min_embed_dim: int = 8
    note: str = ""
    # MatTA's per-step widths, as the pipeline's `train.widths_per_step`: "extracted" (its default: the loss at
    # every width of `widths` every step) or "sampled" (`sandwich_k` random widths; the default before the
    # "levers" round of tune_matta.json).
    widths_per_step: str = "extracted"
    # The single runs' Student; None: the narrowest width (the benchmark's convention: the width most in need of
    # a teacher gets the Student's full loss term).
    student_width: int | None = None


def single_run_student(regime: Regime) -> int:
    """The Student width of the regime's single runs (`Regime.student_width`, else the narrowest width)."""
    return regime.student_width if regime.student_width is not None else min(regime.widths)


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run."""

    seeds: tuple[int, ...]
    epochs: float
    regimes: tuple[Regime, ...]
    limit_train_rows: int | None = None
    limit_test_rows: int | None = None
    # Rounds of the side-by-side timing: batch 256 (model and text -> label), and batch 1 (p95 needs many).
    throughput_rounds: int = 15
    latency_rounds: int = 200
    tfidf_max_iter: int = 300


MAIN_ARMS = ("ce_only", "kd", "matta", "matta_separate", "ce_only+shampoo", "matta+shampoo", "matta_equal_compute")
FULL = Settings(
    seeds=(0, 1, 2),
    epochs=15.0,
    regimes=(
        Regime("main", (32, 64, 128, 256, 512), MAIN_ARMS, note="MiniLM Teacher, 2^18 x 128 table, TA 1024"),
        Regime("ensemble_teacher", (32, 64, 128, 256, 512), ("kd", "matta"), teacher="ensemble",
               note="stronger Teacher: MiniLM head x TF-IDF LR (mean log-probabilities)"),
        Regime("narrow", (8, 16), ("kd", "matta"), min_width=4, note="very narrow Students, TA 1024"),
        Regime("small_table", (16, 32, 64), ("kd", "matta"), num_buckets=2**12, embed_dim=32, min_width=4,
               note="2^12 x 32 hashed table (heavy collisions, small embedding)"),
        Regime("nested", (16, 32, 64, 128, 256, 512), ("ce_only", "kd", "matta", "matta_equal_compute"),
               student_embed_dim=32, min_embed_dim=16,
               note="nested embedding (student_embed_dim 32 at the Student 16, min_embed_dim 16): each width ships "
                    "only its dims of the table; TA 1024 at 128 dims"),
    ),
)
QUICK = Settings(
    seeds=(0, 1),
    epochs=3.0,
    # Nested, with every arm: the quick run exercises every code path the full one does (not its numbers).
    regimes=(Regime("main", (16, 64), MAIN_ARMS, ta_width=256, student_embed_dim=32, min_embed_dim=16,
                    note="quick: plumbing check only (nested embedding)"),),
    limit_train_rows=1500,
    limit_test_rows=400,
    throughput_rounds=3,
    latency_rounds=20,
    tfidf_max_iter=50,
)


@dataclass(frozen=True)
class Job:
    """One training run: an arm at one Student width (single-run arms: the regime's Student) and one seed."""

    regime: Regime
    arm: str
    student_width: int
    seed: int
    epochs: float
    train_overrides: dict[str, Any] = field(default_factory=dict)
    # Tuning passes ("validation",) only: the test split is never scored while choosing settings.
    eval_splits: tuple[str, ...] = ("validation", "test")
    # Names a tuning candidate, so runs that differ only in their overrides get distinct run ids.
    tag: str = ""
    # Where to save each width's served model (`<serve_dir>/w<width>`), for the serving-cost pass; "" = not saved.
    serve_dir: str = ""
    # Single-run arms: extract and score the TA too (its row is marked `is_ta`), so "narrowest width vs the TA"
    # can be judged. Off by default: the tuning scripts average over the records' widths and must not get the TA.
    extract_ta: bool = False

    @property
    def run_id(self) -> str:
        tag = f"/{self.tag}" if self.tag else ""
        return f"{self.regime.name}/{self.arm}/w{self.student_width}/seed{self.seed}{tag}"

    @property
    def eval_widths(self) -> tuple[int, ...]:
        if self.arm not in SINGLE_RUN_ARMS:
            return (self.student_width,)
        extra = (self.regime.ta_width,) if self.extract_ta else ()
        return tuple(dict.fromkeys((*self.regime.widths, *extra)))


# ------------------------------------------------------------------------------------------------ data + Teachers


@dataclass
class Splits:
    """Texts and labels of train/validation/test, and the Teachers' logits on each split."""

    texts: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    teacher_logits: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def load_splits(work_dir: Path, mirror_dir: str | None, settings: Settings) -> tuple[Splits, dict[str, str]]:
    """Prepare Banking77 (official test split; validation carved from train) and read it as the steps do."""
    from matta_core.config import DataSection
    from matta_core.data import prepare_dataset
    from matta_core.families.classifier.inputs import load_inputs

    prepared = work_dir / "prepared"
    prepare_dataset("banking77", str(prepared), mirror_dir=mirror_dir)
    section = DataSection(limit_train_rows=settings.limit_train_rows, limit_test_rows=settings.limit_test_rows)
    inputs = load_inputs(str(prepared), section)
    splits = Splits({k: v.texts for k, v in inputs.splits.items()}, {k: v.labels for k, v in inputs.splits.items()})
    return splits, {k: v.data_hash for k, v in inputs.splits.items()}


def minilm_logits(splits: Splits, hashes: dict[str, str], cache_dir: Path) -> dict[str, np.ndarray]:
    """The MiniLM Teacher (head fitted on train) through the content-addressed caches, as `teacher_step` runs it."""
    from matta_core.teachers import make_teacher
    from matta_core.teachers.cache import cached_predict

    teacher = make_teacher({"kind": "minilm", "embedding_cache_root": str(cache_dir / "embeddings"),
                            "num_classes": NUM_CLASSES})
    teacher.fit(splits.texts["train"], splits.labels["train"], data_hash=hashes["train"], split="train")
    return {
        split: cached_predict(teacher, texts, data_hash=hashes[split], split=split,
                              cache_root=str(cache_dir / "teacher_outputs"))["logits"]
        for split, texts in splits.texts.items()
    }


def fit_tfidf(texts: Sequence[str], labels: np.ndarray, max_iter: int) -> Any:
    """TF-IDF word 1-2-grams + char_wb 3-5-grams (sublinear tf) -> multinomial logistic regression (C=10).

    C=10 over C=30: higher validation accuracy (90.9 % vs 90.8 %) when checked once on this split.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    union = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2),
    )
    pipeline = make_pipeline(union, LogisticRegression(C=10.0, max_iter=max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the quick run stops lbfgs early on purpose
        pipeline.fit(list(texts), labels)
    return pipeline


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(axis=1) == labels).mean())


# ------------------------------------------------------------------------------------------------ training (worker)

_WORKER: dict[str, Any] = {}


def _init_worker(splits: Splits) -> None:
    """Runs once per worker process: one torch thread (faster here for these small ops; see module doc)."""
    import torch

    torch.set_num_threads(1)
    _WORKER["splits"] = splits
    _WORKER["features"] = {}


def _features(num_buckets: int, split: str) -> Any:
    from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer

    key = (num_buckets, split)
    if key not in _WORKER["features"]:
        featurizer = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=num_buckets))
        _WORKER["features"][key] = featurizer.transform(_WORKER["splits"].texts[split])
    return _WORKER["features"][key]


def model_config(regime: Regime, student_width: int) -> Any:
    from matta_core.families.classifier.config import ClassifierConfig
    from matta_core.features import FeaturizerConfig

    return ClassifierConfig(
        num_classes=NUM_CLASSES, hidden_widths=(regime.ta_width,), student_widths=(student_width,),
        embed_dim=regime.embed_dim, min_width=regime.min_width, student_embed_dim=regime.student_embed_dim,
        min_embed_dim=regime.min_embed_dim, features=FeaturizerConfig(num_buckets=regime.num_buckets),
    )


def baseline_config(regime: Regime, width: int) -> Any:
    """A baseline's model at `width`: the single run's width `width` as extraction cuts it.

    Not `model_config(regime, width)`: with a nested embedding that makes `width` the Student, which reads
    `student_embed_dim` dims at every width, while the single run's width `width` reads `embed_dim_for((width,))`
    dims of a model whose Student is `single_run_student(regime)`. Without nesting both give the same model.
    """
    return model_config(regime, single_run_student(regime)).sub_config((width,))


def job_config(job: Job) -> Any:
    """The model config `train` gets for `job`: the nested model for MatTA arms, `baseline_config` otherwise."""
    if train_config(job).arm == "matta":
        return model_config(job.regime, job.student_width)
    return baseline_config(job.regime, job.student_width)


# Per kept row of a compact int8 table besides its int8 values: a float32 scale, an int32 bucket id, a float32 IDF.
COMPACT_ROW_OVERHEAD_BYTES = 12


def trained_bucket_ids(num_buckets: int) -> np.ndarray:
    """The distinct buckets of the training split (`compact.trained_buckets`): the rows a served model keeps."""
    key = ("trained_buckets", num_buckets)
    if key not in _WORKER["features"]:
        _WORKER["features"][key] = np.unique(_features(num_buckets, "train").indices.numpy())
    return _WORKER["features"][key]


def kept_rows(num_buckets: int) -> int:
    """Rows a compact extraction keeps (`compact.trained_buckets`): the distinct buckets of the training split."""
    return int(trained_bucket_ids(num_buckets).size)


def compact_table_bytes(rows: int, dims: int) -> int:
    """Bytes of a width's int8 compact table (`compact(..., dtype="int8", keep_buckets=trained rows)`)."""
    return rows * dims + rows * COMPACT_ROW_OVERHEAD_BYTES


def train_config(job: Job) -> Any:
    from matta_core.training import TrainConfig

    arm, _, optimizer = job.arm.partition("+")
    base = BASE_ARM.get(arm, arm)
    overrides = dict(job.train_overrides)
    if base == "matta" and job.regime.widths_per_step == "extracted":
        # What the pipeline does by default (`train.widths_per_step: extracted`): the loss at every width it
        # extracts, every step (the TA and the Student have their own terms); an explicit override wins.
        overrides.setdefault("loss_widths", [[w] for w in job.regime.widths])
    return TrainConfig(arm=base, epochs=job.epochs, seed=job.seed, optimizer=optimizer or "adamw",
                       progress=False, num_threads=1, **overrides)


def run_job(job: Job) -> list[dict[str, Any]]:
    """Train one job, serve every width it yields as the pipeline would, and score it (one record per width)."""
    import matta_core.training.shampoo  # noqa: F401  (registers optimizer="shampoo" in this process)
    from matta_core.families.classifier.data import TrainingData
    from matta_core.families.classifier.trainer import train

    splits: Splits = _WORKER["splits"]
    regime = job.regime
    features = _features(regime.num_buckets, "train")
    teacher = splits.teacher_logits[regime.teacher]
    data = TrainingData(features, splits.labels["train"], teacher["train"], num_classes=NUM_CLASSES)
    tconfig = train_config(job)
    model, result = train(job_config(job), data, tconfig)
    avg_ngrams = float(features.indices.numel()) / len(features)
    rows = kept_rows(regime.num_buckets)
    flops = train_flops(job, tconfig, result.steps, avg_ngrams)
    records = []
    for width in job.eval_widths:
        record: dict[str, Any] = {
            "regime": regime.name, "arm": job.arm, "teacher": regime.teacher, "optimizer": tconfig.optimizer,
            "width": width, "student_width": job.student_width, "ta_width": regime.ta_width, "seed": job.seed,
            # The TA of a single run (not one of the regime's widths): a reference point for the size goals.
            "is_ta": width == regime.ta_width and width not in regime.widths,
            "kept_rows": rows,
        }
        record.update(serve_and_score(model, width, job))
        record["table_bytes_estimate"] = compact_table_bytes(rows, record["embed_dims"])
        record.update({
            "train_seconds": result.wall_seconds, "train_flops": flops, "epochs": job.epochs,
            "steps": result.steps, "batch_size": tconfig.batch_size, "run_id": job.run_id,
            "train_overrides": job.train_overrides,
        })
        records.append(record)
    return records


def serve_and_score(model: Any, width: int, job: Job) -> dict[str, Any]:
    """The served form of `model` at `width` (as `extract_step` makes it), scored on `job.eval_splits`.

    extract (float32) -> `compact` (int8 rows, the training split's buckets only) -> temperature fitted on the
    validation split -> metrics of the calibrated served model, plus the float32 extraction's accuracy. With
    `job.serve_dir` the served model is saved there (`w<width>`) for the serving-cost pass.
    """
    from matta_core.families.classifier.calibrate import validation_temperature
    from matta_core.families.classifier.compact import compact
    from matta_core.families.classifier.evaluate import evaluate_model, predict_logits
    from matta_core.families.classifier.extract import extract, extracted_config, save_extracted

    splits: Splits = _WORKER["splits"]
    num_buckets = job.regime.num_buckets
    full = extract(model, (width,))
    served, config = compact(full, extracted_config(model.config, (width,)), dtype=SERVED_DTYPE,
                             keep_buckets=trained_bucket_ids(num_buckets))
    # Calibrated on validation whatever the job scores: serving always applies a temperature.
    temperature = validation_temperature(served, _features(num_buckets, "validation"), splits.labels["validation"])
    out: dict[str, Any] = {"temperature": temperature, "served_dtype": SERVED_DTYPE}
    for split in job.eval_splits:
        features, labels = _features(num_buckets, split), splits.labels[split]
        evaluation = evaluate_model(served, features, labels, measure_speed=False, name=str(width),
                                    temperature=temperature)
        prefix = "val" if split == "validation" else split
        for key in ("accuracy", "macro_f1", "nll", "ece", "nll_uncalibrated", "ece_uncalibrated"):
            out[f"{prefix}_{key}"] = evaluation.metrics[key]
        out[f"{prefix}_accuracy_float32"] = accuracy(predict_logits(full, features).numpy(), labels)
        # Shape and cost of the served model (the same for every split).
        out.update({"params": evaluation.params.total, "dense_params": evaluation.params.dense,
                    "embedding_params": evaluation.params.embedding,
                    "flops_per_example": evaluation.flops_per_example, "weight_bytes": evaluation.weight_bytes})
    out["embed_dims"] = int(served.embedding.embedding_dim)
    out["served_dir"] = None
    if job.serve_dir:
        meta = replace(config, temperature=temperature).with_metadata(
            name=f"{job.regime.name}/{job.arm}/w{width}", arm=job.arm, run_id=job.run_id)
        out["served_dir"] = str(save_extracted(served, meta, Path(job.serve_dir) / f"w{width}"))
    return out


def train_flops(job: Job, tconfig: Any, steps: int, avg_ngrams: float) -> float:
    """Analytic model FLOPs of the run: forward + backward = 3 x forward (matrix products only, optimizer excluded).

    MatTA embeds once per step and runs the head at the TA, the Student and `sandwich_k` sampled widths (or every
    `loss_widths` width); a sampled width is log-uniform on [low, TA], whose mean is (TA - low) / ln(TA / low),
    and a head's FLOPs are linear in its width, so the expectation is exact. With a nested embedding a head reads
    the dims of its width; the sampled heads are then counted at the dims of the mean sampled width (an
    approximation). A baseline is counted at its own shape (`baseline_config`).
    """
    from matta_core.evaluation import analytic_flops_per_example

    regime = job.regime
    config = job_config(job)

    def head(width: float) -> float:
        return 2.0 * config.embed_dim_for((max(1, round(width)),)) * width + 2.0 * width * NUM_CLASSES

    if tconfig.arm == "matta":
        top = regime.ta_width
        per_example = 2.0 * avg_ngrams * regime.embed_dim + head(top) + head(job.student_width)
        if tconfig.loss_widths is not None:
            fixed = {w[0] for w in tconfig.loss_widths} - {top, job.student_width}
            per_example += sum(head(w) for w in fixed)
        else:
            low = tconfig.sample_low if isinstance(tconfig.sample_low, int) else regime.min_width
            mean_sampled = (top - low) / math.log(top / low) if top > low else float(top)
            per_example += tconfig.sandwich_k * head(mean_sampled)
    else:
        per_example = analytic_flops_per_example((job.student_width,), config.embed_dim, 0, NUM_CLASSES, avg_ngrams)
    return 3.0 * per_example * tconfig.batch_size * steps


def equal_compute_plan(regime: Regime, epochs: float, train_texts: Sequence[str],
                       multiplier: float | None = None) -> dict[str, Any]:
    """The epochs multiplier of `matta_equal_compute`: analytic training FLOPs of all the per-width `kd` runs of
    `regime` together over those of one `matta` run, both at `epochs` (the same steps and batch, so the ratio of
    FLOPs per step). Computed in the main process before any run starts, from the training split's mean n-grams.
    A given `multiplier` replaces that ratio (basis "given"; the ratio is still recorded as `flops_ratio`).

    Analytic FLOPs count matrix products only: the TA's head is most of a MatTA step's FLOPs, so the multiplier
    can be below 1 although one MatTA run takes much less wall time than all the `kd` runs (their per-step cost is
    mostly what FLOPs leave out); `equal_compute` in the report puts the measured seconds beside it.
    """
    from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer

    features = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=regime.num_buckets)).transform(list(train_texts))
    avg_ngrams = float(features.indices.numel()) / len(features)
    matta = Job(regime, "matta", single_run_student(regime), 0, epochs)
    steps = train_config(matta).total_steps(len(features))
    kd_flops = sum(train_flops(job, train_config(job), steps, avg_ngrams)
                   for job in (Job(regime, "kd", w, 0, epochs) for w in regime.widths))
    matta_flops = train_flops(matta, train_config(matta), steps, avg_ngrams)
    flops_ratio = kd_flops / matta_flops
    chosen = flops_ratio if multiplier is None else multiplier
    equal = replace(matta, arm="matta_equal_compute", epochs=epochs * chosen)
    equal_steps = train_config(equal).total_steps(len(features))
    return {"basis": "train_flops" if multiplier is None else "given", "multiplier": chosen,
            "flops_ratio": flops_ratio, "avg_active_ngrams": avg_ngrams, "epochs": epochs,
            "equal_compute_epochs": equal.epochs, "steps": steps, "equal_compute_steps": equal_steps,
            "kd_train_flops_all_widths": kd_flops, "matta_train_flops": matta_flops,
            "matta_equal_compute_train_flops": train_flops(equal, train_config(equal), equal_steps, avg_ngrams)}


def make_jobs(settings: Settings, overrides: dict[str, Any], epochs_multiplier: Mapping[str, float] | None = None,
              serve_root: Path | None = None) -> list[Job]:
    """Every run, longest first (most epochs, then MatTA with the widest TA), so two workers finish close together.

    `matta_separate` at the single runs' Student IS the single `matta` run (same config, seed and data order: the
    trainer is deterministic), so it is not trained twice; `reuse_single_run` copies its records.
    `matta_equal_compute` trains `epochs_multiplier[regime]` times the epochs (`equal_compute_plan`). With
    `serve_root`, the first seed's runs save their served models under `<serve_root>/<regime>/<arm>/`.
    """
    jobs = []
    for regime in settings.regimes:
        student = single_run_student(regime)
        for seed in settings.seeds:
            for arm in regime.arms:
                widths = (student,) if arm in SINGLE_RUN_ARMS else regime.widths
                if arm == "matta_separate" and "matta" in regime.arms:
                    widths = tuple(w for w in widths if w != student)
                epochs = settings.epochs
                if arm == "matta_equal_compute":
                    if not epochs_multiplier or regime.name not in epochs_multiplier:
                        raise ValueError(f"regime {regime.name!r} has arm matta_equal_compute: give its epochs "
                                         "multiplier (equal_compute_plan)")
                    epochs *= epochs_multiplier[regime.name]
                serve_dir = (str(serve_root / regime.name / arm)
                             if serve_root is not None and seed == settings.seeds[0] else "")
                jobs += [Job(regime, arm, w, seed, epochs, overrides, serve_dir=serve_dir, extract_ta=True)
                         for w in widths]
    return sorted(jobs, key=lambda j: (-j.epochs, j.arm.startswith("ce") or j.arm == "kd", -j.student_width))


def reuse_single_run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `matta_separate` records at the single runs' Student: copies of the `matta` run's Student records."""
    separate_regimes = {r["regime"] for r in records if r["arm"] == "matta_separate"}
    copies = [
        {**r, "arm": "matta_separate", "reused_from": "matta"}
        for r in records
        if r["arm"] == "matta" and r["regime"] in separate_regimes and r["width"] == r["student_width"]
    ]
    return records + copies


def run_all(jobs: Sequence[Job], splits: Splits, workers: int) -> list[dict[str, Any]]:
    """Run `jobs` in `workers` spawned processes (spawn: forking a process that already ran torch can deadlock)."""
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(splits,)) as pool:
        for i, batch in enumerate(pool.map(run_job, jobs)):
            records += batch
            print(f"[{time.perf_counter() - started:7.1f} s] {i + 1}/{len(jobs)} {jobs[i].run_id}: "
                  + ", ".join(f"{r['width']}={r.get('test_accuracy', r.get('val_accuracy')):.4f}" for r in batch),
                  flush=True)
    return records


# ------------------------------------------------------------------------------------------------ serving cost


def _rotated(names: list[str], shift: int) -> list[str]:
    shift %= max(1, len(names))
    return names[shift:] + names[:shift]


def _text_to_label(predictor: Any, texts: list[str]) -> np.ndarray:
    """What a served model does with raw text: featurise, score, calibrated softmax, top label."""
    return predictor.probabilities(texts).argmax(axis=1)


def measure_serving(records: list[dict[str, Any]], splits: Splits, tfidf: Any, settings: Settings,
                    seed: int = 0) -> dict[str, Any]:
    """Bytes, resident memory, batch-1 latency, batch-256 and text -> label throughput of every saved served model.

    Each model is loaded as serving loads it (`TextPredictor`). Sizes first (the resident reading runs in a child
    process), then the timings, side by side: in round r every model is timed once, in an order rotated by r, on
    the same input (batch 1: test row r of a fixed sample; batch 256: one fixed sample of test rows), so load that
    drifts during the pass hits every model alike. Text -> label runs the TF-IDF + LR pipeline in the same rounds,
    from the same raw texts. One thread everywhere (torch and BLAS), as a CPU serving replica would.
    """
    import torch
    from threadpoolctl import threadpool_limits

    from matta_core.evaluation.cost import LatencyStats, ThroughputStats
    from matta_core.evaluation.memory import folder_bytes
    from matta_core.families.classifier.evaluate import classifier_resident_bytes
    from matta_core.serving.matta_text_classifier import TextPredictor

    started = time.perf_counter()
    torch.set_num_threads(1)
    # One entry per saved folder (a reused matta_separate record points at its matta run's folder).
    saved: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("served_dir") and record["served_dir"] not in saved:
            saved[record["served_dir"]] = {key: record[key] for key in ("regime", "arm", "width", "is_ta")}
            saved[record["served_dir"]]["dir"] = record["served_dir"]
    dirs = list(saved)
    for d in dirs:
        saved[d].update(bytes_on_disk=folder_bytes(d), resident_bytes=classifier_resident_bytes(d))
    predictors = {d: TextPredictor(d) for d in dirs}

    rng = np.random.default_rng(seed)
    test = splits.texts["test"]
    batch_texts = [test[i] for i in rng.choice(len(test), THROUGHPUT_BATCH_SIZE)]
    single_texts = [test[i] for i in rng.choice(len(test), max(1, settings.latency_rounds))]

    def as_inputs(predictor: Any, texts: list[str]) -> tuple[Any, ...]:
        indptr, indices, counts = predictor.featurizer.csr(texts)
        return torch.from_numpy(indices), torch.from_numpy(indptr[:-1]), torch.from_numpy(counts)

    # Featurised once per featuriser setting, outside the timed calls: batch 1 and 256 time the model alone.
    inputs: dict[Any, tuple[Any, list[Any]]] = {}
    for predictor in predictors.values():
        if predictor.config.features not in inputs:
            inputs[predictor.config.features] = (as_inputs(predictor, batch_texts),
                                                 [as_inputs(predictor, [t]) for t in single_texts])

    model = {d: predictors[d].model for d in dirs}
    featurised = {d: inputs[predictors[d].config.features] for d in dirs}
    text: dict[str, Callable[[], Any]] = {"tfidf_lr": lambda: tfidf.predict(batch_texts)}
    for d in dirs:
        text[d] = partial(_text_to_label, predictors[d], batch_texts)
    samples: dict[str, dict[str, list[int]]] = {"batch1": {d: [] for d in dirs}, "batch256": {d: [] for d in dirs},
                                                "text": {n: [] for n in text}}

    def timed(fns: dict[str, Callable[[], Any]], kind: str, round_: int) -> None:
        for name in _rotated(list(fns), round_):
            start = time.perf_counter_ns()
            fns[name]()
            samples[kind][name].append(time.perf_counter_ns() - start)

    with threadpool_limits(limits=1), torch.inference_mode():
        for d in dirs:  # warm-up: lazy allocations and cold caches are paid once, before any timing
            model[d](*featurised[d][1][0])
            model[d](*featurised[d][0])
        for fn in text.values():
            fn()
        for r in range(max(settings.latency_rounds, settings.throughput_rounds)):
            if r < settings.latency_rounds:  # the round's example, the same for every model
                timed({d: partial(model[d], *featurised[d][1][r % len(single_texts)]) for d in dirs}, "batch1", r)
            if r < settings.throughput_rounds:
                timed({d: partial(model[d], *featurised[d][0]) for d in dirs}, "batch256", r)
                timed(text, "text", r)

    def per_s(name: str) -> float:
        return len(batch_texts) / (float(np.median(samples["text"][name])) / 1e9)

    models = {}
    for d in dirs:
        latency = LatencyStats.from_samples(samples["batch1"][d], threads=1)
        batched = ThroughputStats.from_samples(samples["batch256"][d], len(batch_texts), threads=1)
        entry = saved[d]
        models[f"{entry['regime']}/{entry['arm']}/w{entry['width']}"] = {
            **entry, "latency_p50_ms": latency.p50_ms, "latency_p95_ms": latency.p95_ms,
            "latency_mean_ms": latency.mean_ms, "examples_per_s_batch256": batched.examples_per_s,
            "text_to_label_examples_per_s": per_s(d)}
    return {
        "threads": 1, "batch_size": len(batch_texts), "latency_rounds": settings.latency_rounds,
        "throughput_rounds": settings.throughput_rounds, "models": models,
        "tfidf_lr": {"text_to_label_examples_per_s": per_s("tfidf_lr")},
        "what": {
            "bytes_on_disk": "the saved folder (model.safetensors + config.json)",
            "resident_bytes": "RSS that loading + one prediction add to a warm process with the serving code",
            "latency_p50_ms/p95": "one model call at batch 1 on featurised input; percentiles over rounds",
            "examples_per_s_batch256": "one model call at batch 256 on featurised input; median over rounds",
            "text_to_label_examples_per_s": "raw text -> predicted label at batch 256, featurisation included "
                                            "(TextPredictor; TF-IDF + LR: pipeline.predict); median over rounds",
        },
        "seconds": time.perf_counter() - started,
    }


def attach_serving(rows: list[dict[str, Any]], serving: dict[str, Any]) -> None:
    """Copy each row's serving measurement (its first seed's saved model) onto the summary row."""
    by_dir = {m["dir"]: m for m in serving["models"].values()}
    for row in rows:
        measured = by_dir.get(row.get("served_dir") or "")
        for key in SERVING_KEYS:
            row[key] = None if measured is None else measured[key]


# ------------------------------------------------------------------------------------------------ summaries


def _mean(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def summarise(records: list[dict[str, Any]], teacher_acc: dict[str, float]) -> list[dict[str, Any]]:
    """One row per (regime, arm, width): mean ± std over seeds, error reductions, Teacher gap closed, cost."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["regime"], r["arm"], r["width"]), []).append(r)
    rows = []
    for (regime, arm, width), runs in groups.items():
        acc = np.array([r["test_accuracy"] for r in runs])
        rows.append({
            "regime": regime, "arm": arm, "width": width, "teacher": runs[0]["teacher"], "n": len(runs),
            "is_ta": bool(runs[0].get("is_ta", False)), "embed_dims": runs[0].get("embed_dims"),
            "params": runs[0]["params"], "dense_params": runs[0]["dense_params"],
            "flops_per_example": runs[0]["flops_per_example"],
            "test_accuracy_mean": float(acc.mean()), "test_accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1
            else 0.0, "val_accuracy_mean": float(np.mean([r["val_accuracy"] for r in runs])),
            "test_accuracy_float32_mean": _mean(runs, "test_accuracy_float32"),
            "test_macro_f1_mean": _mean(runs, "test_macro_f1"), "test_nll_mean": _mean(runs, "test_nll"),
            "test_ece_mean": _mean(runs, "test_ece"),
            "test_ece_uncalibrated_mean": _mean(runs, "test_ece_uncalibrated"),
            "temperature_mean": _mean(runs, "temperature"),
            "train_seconds_mean": float(np.mean([r["train_seconds"] for r in runs])),
            "train_flops": runs[0]["train_flops"], "steps": runs[0].get("steps"),
            "served_dir": next((r["served_dir"] for r in runs if r.get("served_dir")), None),
        })
    index = {(r["regime"], r["arm"], r["width"]): r for r in rows}
    for row in rows:
        teacher = teacher_acc[row["teacher"]]
        for ref in ("ce_only", "kd"):
            base = index.get((row["regime"], ref, row["width"]))
            if base is None:
                continue
            err, base_err = 1 - row["test_accuracy_mean"], 1 - base["test_accuracy_mean"]
            row[f"rel_error_reduction_vs_{ref}"] = (base_err - err) / base_err if base_err > 0 else None
            row[f"delta_vs_{ref}"] = row["test_accuracy_mean"] - base["test_accuracy_mean"]
            row[f"beats_{ref}_beyond_1std"] = bool(
                row["test_accuracy_mean"] - row["test_accuracy_std"]
                > base["test_accuracy_mean"] + base["test_accuracy_std"])
            if ref == "ce_only":
                gap = teacher - base["test_accuracy_mean"]
                row["teacher_gap_closed"] = (row["delta_vs_ce_only"] / gap) if gap > 0 else None
    order = {a: i for i, a in enumerate(ARM_ORDER)}
    return sorted(rows, key=lambda r: (r["regime"], order.get(r["arm"], 99), r["width"]))


def arm_costs(records: list[dict[str, Any]], regime: str) -> dict[str, dict[str, float]]:
    """Cost of each arm to produce ALL widths once (per seed, mean over seeds): per-width arms sum their runs."""
    costs: dict[str, dict[str, float]] = {}
    for arm in {r["arm"] for r in records if r["regime"] == regime}:
        runs = {r["run_id"]: r for r in records if r["regime"] == regime and r["arm"] == arm}
        seeds = sorted({r["seed"] for r in runs.values()})
        seconds = [sum(r["train_seconds"] for r in runs.values() if r["seed"] == s) for s in seeds]
        flops = [sum(r["train_flops"] for r in runs.values() if r["seed"] == s) for s in seeds]
        costs[arm] = {"runs_per_seed": len(runs) / len(seeds), "train_seconds_all_widths": float(np.mean(seconds)),
                      "train_flops_all_widths": float(np.mean(flops))}
    return costs


def equal_compute_summary(rows: list[dict[str, Any]], costs: dict[str, dict[str, dict[str, float]]],
                          plans: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per regime with `matta_equal_compute`: the plan (multiplier, FLOPs), what the runs cost, and accuracy per
    width of `kd`, `matta` (equal budget) and `matta_equal_compute` (equal compute)."""
    out: dict[str, dict[str, Any]] = {}
    for regime, plan in plans.items():
        acc = {(r["arm"], r["width"]): r for r in rows if r["regime"] == regime and not r["is_ta"]}
        cost = costs.get(regime, {})
        spent = {arm: cost[arm] for arm in ("kd", "matta", "matta_equal_compute") if arm in cost}
        per_width = {}
        for width in sorted({w for (a, w) in acc if a == "matta_equal_compute"}):
            entry: dict[str, Any] = {arm: acc[(arm, width)]["test_accuracy_mean"]
                                     for arm in ("kd", "matta", "matta_equal_compute") if (arm, width) in acc}
            if "kd" in entry:
                for arm in ("matta", "matta_equal_compute"):
                    if arm in entry:
                        entry[f"{arm}_minus_kd"] = entry[arm] - entry["kd"]
            per_width[width] = entry
        seconds_ratio = (spent["kd"]["train_seconds_all_widths"] / spent["matta"]["train_seconds_all_widths"]
                         if "kd" in spent and "matta" in spent else None)
        out[regime] = {**plan, "measured": spent, "per_width": per_width,
                       "kd_all_widths_over_matta_train_seconds": seconds_ratio}
    return out


def goals(rows: list[dict[str, Any]], costs: dict[str, dict[str, float]], serving: dict[str, Any],
          tfidf_test: float) -> dict[str, Any]:
    """The first goals (main regime, equal budget), each with the figures it was judged on."""
    main = {(r["arm"], r["width"]): r for r in rows if r["regime"] == "main" and not r["is_ta"]}
    widths = sorted({w for (a, w) in main if a == "matta"})
    out: dict[str, Any] = {}
    out["matta_beats_ce_beyond_1std_every_width"] = {
        "met": all(main[("matta", w)].get("beats_ce_only_beyond_1std", False) for w in widths),
        "per_width": {w: main[("matta", w)].get("delta_vs_ce_only") for w in widths}}
    deltas = [d for d in out["matta_beats_ce_beyond_1std_every_width"]["per_width"].values() if d is not None]
    out["matta_beats_ce_beyond_1std_every_width"]["summary"] = (
        f"main: worst {min(deltas):+.2%} vs CE-only" if deltas else "")
    gaps = {w: main[("matta", w)]["test_accuracy_mean"] - main[("kd", w)]["test_accuracy_mean"]
            for w in widths if ("kd", w) in main}
    ratio = (costs["matta"]["train_seconds_all_widths"] / costs["kd"]["train_seconds_all_widths"]
             if "kd" in costs and "matta" in costs else None)
    out["matta_within_0.3pt_of_kd_at_a_third_of_the_time"] = {
        "met": bool(gaps) and all(g >= -0.003 for g in gaps.values()) and ratio is not None and ratio <= 1 / 3,
        "matta_minus_kd": gaps, "time_ratio_matta_over_all_kd_runs": ratio,
        "time_ratio_matta_over_all_matta_separate_runs": (
            costs["matta"]["train_seconds_all_widths"] / costs["matta_separate"]["train_seconds_all_widths"]
            if "matta_separate" in costs else None),
        "summary": "" if not gaps else f"main: worst {min(gaps.values()):+.2%} vs KD"
                   + ("" if ratio is None else f", {ratio:.2f}x the time of all KD runs")}
    top = max(widths)
    gap_closed = main[("matta", top)].get("teacher_gap_closed")
    out["largest_student_closes_80pct_of_teacher_gap"] = {"met": gap_closed is not None and gap_closed >= 0.8,
                                                          "width": top, "gap_closed": gap_closed,
                                                          "summary": f"main w{top}: {_pct(gap_closed, 0)}"}
    tfidf_qps = serving["tfidf_lr"]["text_to_label_examples_per_s"]
    beats = {}
    for w in widths:
        row = main[("matta", w)]
        qps = row.get("text_to_label_examples_per_s")
        beats[w] = {"accuracy": row["test_accuracy_mean"], "examples_per_s": qps,
                    "beats_tfidf_accuracy": row["test_accuracy_mean"] > tfidf_test,
                    "at_least_tfidf_throughput": qps is not None and qps >= tfidf_qps}
    out["matta_beats_tfidf_at_equal_or_higher_throughput"] = {
        "met": any(b["beats_tfidf_accuracy"] and b["at_least_tfidf_throughput"] for b in beats.values()),
        "all_widths": all(b["beats_tfidf_accuracy"] and b["at_least_tfidf_throughput"] for b in beats.values()),
        "tfidf_accuracy": tfidf_test, "tfidf_examples_per_s": tfidf_qps, "per_width": beats,
        "summary": "main widths beating TF-IDF's accuracy at >= its text->label throughput: "
                   + (", ".join(str(w) for w, b in beats.items()
                                if b["beats_tfidf_accuracy"] and b["at_least_tfidf_throughput"]) or "none")}
    wins = [{"regime": r["regime"], "width": r["width"], "delta_vs_kd": r["delta_vs_kd"]}
            for r in rows if r["arm"] == "matta" and r.get("beats_kd_beyond_1std")]
    out["regime_where_matta_beats_kd_beyond_1std"] = {
        "met": bool(wins), "found": wins,
        "summary": ", ".join(f"{w['regime']}/w{w['width']} {w['delta_vs_kd']:+.2%}" for w in wins) or "none"}
    return out


def _regimes(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["regime"] for r in rows))


def _kd_deltas(rows: list[dict[str, Any]], arm: str) -> dict[str, dict[int, dict[str, Any]]]:
    """Per regime with `arm` and `kd`: per width (TA excluded), `arm` minus `kd` and the ±1 sd verdict."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for regime in _regimes(rows):
        index = {(r["arm"], r["width"]): r for r in rows if r["regime"] == regime and not r["is_ta"]}
        widths = sorted(w for (a, w) in index if a == arm and ("kd", w) in index)
        if widths:
            out[regime] = {w: {"delta": index[(arm, w)]["test_accuracy_mean"] - index[("kd", w)]["test_accuracy_mean"],
                               "std": index[(arm, w)]["test_accuracy_std"],
                               "kd_std": index[("kd", w)]["test_accuracy_std"],
                               "beyond_1sd": bool(index[(arm, w)].get("beats_kd_beyond_1std"))} for w in widths}
    return out


def serving_goals(rows: list[dict[str, Any]], serving: dict[str, Any], tfidf_test: float,
                  equal_compute: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Issue 15's goals, each `{"met": bool, ...the figures it was judged on, "summary": one line}`.

    An existence goal (a size class, cost scaling) is met if some regime meets it (`met_in` lists which); a claim
    about the method (MatTA vs KD, calibration) must hold in every regime that has the arms it compares.
    """
    out: dict[str, Any] = {}
    tfidf_qps = serving["tfidf_lr"]["text_to_label_examples_per_s"]
    served = [r for r in rows if r.get("bytes_on_disk") is not None]

    def size_class(r: dict[str, Any]) -> dict[str, Any]:
        qps = r["text_to_label_examples_per_s"]
        return {"regime": r["regime"], "arm": r["arm"], "width": r["width"], "is_ta": r["is_ta"],
                "bytes_on_disk": r["bytes_on_disk"], "test_accuracy_mean": r["test_accuracy_mean"],
                "test_accuracy_std": r["test_accuracy_std"], "text_to_label_examples_per_s": qps,
                "throughput_over_tfidf": qps / tfidf_qps, "beats_tfidf_accuracy": r["test_accuracy_mean"] > tfidf_test,
                "at_least_2x_tfidf_throughput": qps >= 2 * tfidf_qps}

    small = [size_class(r) for r in served if r["arm"] in MATTA_ARMS and r["bytes_on_disk"] <= SMALL_CLASS_BYTES]
    winners = [c for c in small if c["beats_tfidf_accuracy"] and c["at_least_2x_tfidf_throughput"]]
    best = max(winners or small, key=lambda c: c["test_accuracy_mean"], default=None)
    out["smallest_class_under_2mb_beats_tfidf_at_2x_throughput"] = {
        "met": bool(winners), "max_bytes_on_disk": SMALL_CLASS_BYTES, "tfidf_accuracy": tfidf_test,
        "tfidf_text_to_label_examples_per_s": tfidf_qps, "candidates_under_2mb": len(small),
        "candidates_meeting_it": len(winners), "best": best,
        "summary": "no MatTA width <= 2 MB" if best is None else (
            f"best {best['regime']}/{best['arm']}/w{best['width']}: {best['bytes_on_disk'] / 1e6:.2f} MB, "
            f"{best['test_accuracy_mean']:.2%} vs TF-IDF {tfidf_test:.2%}, "
            f"{best['throughput_over_tfidf']:.1f}x its text->label throughput")}

    scaling: dict[str, dict[str, Any]] = {}
    for regime in _regimes(served):
        matta = [r for r in served if r["regime"] == regime and r["arm"] == "matta"]
        ta = next((r for r in matta if r["is_ta"]), None)
        narrow = min((r for r in matta if not r["is_ta"]), key=lambda r: r["width"], default=None)
        if ta is None or narrow is None:
            continue
        speed = ta["latency_p50_ms"] / narrow["latency_p50_ms"]
        size = narrow["bytes_on_disk"] / ta["bytes_on_disk"]
        scaling[regime] = {"narrowest_width": narrow["width"], "ta_width": ta["width"],
                           "batch1_throughput_ratio": speed, "bytes_on_disk_ratio": size,
                           "resident_ratio": narrow["resident_bytes"] / ta["resident_bytes"],
                           "batch256_throughput_ratio": narrow["examples_per_s_batch256"]
                           / ta["examples_per_s_batch256"],
                           "met": speed >= 3 and size <= 1 / 20}
    met_in = [g for g, s in scaling.items() if s["met"]]
    out["cost_scales_narrowest_3x_throughput_and_under_1_20_bytes"] = {
        "met": bool(met_in), "met_in": met_in, "per_regime": scaling,
        "summary": "; ".join(f"{g}: {s['batch1_throughput_ratio']:.1f}x batch-1, bytes x{s['bytes_on_disk_ratio']:.3f}"
                             for g, s in scaling.items())}

    budget = _kd_deltas(rows, "matta")
    within: dict[str, dict[str, Any]] = {
        g: {"met": all(d["delta"] >= -0.001 for d in ds.values()),
            "matta_minus_kd": {w: d["delta"] for w, d in ds.items()}} for g, ds in budget.items()}
    out["matta_within_0.1pt_of_kd_every_width_equal_budget"] = {
        "met": bool(within) and all(v["met"] for v in within.values()), "per_regime": within,
        "summary": "; ".join(f"{g}: worst {min(v['matta_minus_kd'].values()):+.2%}" for g, v in within.items())}

    compute = _kd_deltas(rows, "matta_equal_compute")
    ahead: dict[str, dict[str, Any]] = {g: {"met": all(d["delta"] > 0 for d in ds.values()),
                 "matta_equal_compute_minus_kd": {w: d["delta"] for w, d in ds.items()},
                 "epochs_multiplier": equal_compute.get(g, {}).get("multiplier"),
                 "kd_train_flops_all_widths": equal_compute.get(g, {}).get("kd_train_flops_all_widths"),
                 "matta_equal_compute_train_flops": equal_compute.get(g, {}).get("matta_equal_compute_train_flops")}
             for g, ds in compute.items()}
    out["matta_ahead_of_kd_every_width_equal_compute"] = {
        "met": bool(ahead) and all(v["met"] for v in ahead.values()), "per_regime": ahead,
        "summary": "; ".join(f"{g} (x{v['epochs_multiplier']:.2f} epochs): worst "
                             f"{min(v['matta_equal_compute_minus_kd'].values()):+.2%}" for g, v in ahead.items()
                             if v["epochs_multiplier"] is not None)}

    narrowest: dict[str, dict[str, Any]] = {g: {"met": all(d["beyond_1sd"] for d in list(ds.values())[:2]),
                     "per_width": dict(list(ds.items())[:2])} for g, ds in budget.items()}
    out["matta_beats_kd_beyond_1sd_two_narrowest_widths"] = {
        "met": bool(narrowest) and all(v["met"] for v in narrowest.values()), "per_regime": narrowest,
        "summary": "; ".join(f"{g}: " + ", ".join(f"w{w} {d['delta']:+.2%}{' (>1 sd)' if d['beyond_1sd'] else ''}"
                                                  for w, d in v["per_width"].items())
                             for g, v in narrowest.items())}

    def worst(selected: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
        scored = [r for r in selected if r.get(key) is not None]
        top = max(scored, key=lambda r: r[key], default=None)
        return None if top is None else {"regime": top["regime"], "arm": top["arm"], "width": top["width"],
                                         key: top[key]}

    matta_rows = [r for r in rows if r["arm"] == "matta"]
    per_regime_ece = {g: {r["width"]: r["test_ece_mean"] for r in matta_rows if r["regime"] == g}
                      for g in _regimes(matta_rows)}
    out["ece_at_most_0.03_every_width"] = {
        "met": bool(matta_rows) and all(r["test_ece_mean"] <= 0.03 for r in matta_rows),
        "judged_on": "arm matta, every width and the TA, calibrated test ECE (mean over seeds)",
        "worst_matta": worst(matta_rows, "test_ece_mean"), "worst_any_arm": worst(rows, "test_ece_mean"),
        "worst_matta_uncalibrated": worst(matta_rows, "test_ece_uncalibrated_mean"),
        "matta_per_regime": per_regime_ece,
        "summary": "" if not matta_rows else (
            f"worst MatTA {max(r['test_ece_mean'] for r in matta_rows):.3f} (before calibration "
            f"{max(r['test_ece_uncalibrated_mean'] for r in matta_rows):.3f}); worst of any arm "
            f"{max(r['test_ece_mean'] for r in rows):.3f}")}
    return out


def super_additivity(rows: list[dict[str, Any]]) -> dict[int, dict[str, float | bool]]:
    """Per width: MatTA gain, Shampoo gain (both over CE-only), the combined gain, and whether it exceeds the sum."""
    main = {(r["arm"], r["width"]): r["test_accuracy_mean"] for r in rows if r["regime"] == "main"}
    out: dict[int, dict[str, float | bool]] = {}
    for width in sorted({w for (a, w) in main if a == "matta+shampoo"}):
        needed = [("ce_only", width), ("matta", width), ("ce_only+shampoo", width)]
        if not all(k in main for k in needed):
            continue
        ce = main[("ce_only", width)]
        matta, shampoo, both = main[("matta", width)] - ce, main[("ce_only+shampoo", width)] - ce, \
            main[("matta+shampoo", width)] - ce
        out[width] = {"matta_gain": matta, "shampoo_gain": shampoo, "combined_gain": both,
                      "super_additive": both > matta + shampoo}
    return out


# ------------------------------------------------------------------------------------------------ outputs


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}%}"


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _width_label(row: dict[str, Any]) -> str:
    return f"{row['width']} (TA)" if row["is_ta"] else str(row["width"])


def serving_table(report: dict[str, Any], regime: str) -> list[str]:
    """The per-width serving table of one regime: cost (first seed's served model) beside quality (all seeds)."""
    order = {a: i for i, a in enumerate(ARM_ORDER)}
    rows = sorted((r for r in report["summary"] if r["regime"] == regime),
                  key=lambda r: (r["width"], order.get(r["arm"], 99)))
    lines = ["| width | arm | embed dims | on disk MB | resident MB | p50 / p95 ms (batch 1) | batch-256 ex/s "
             "| text→label ex/s | test accuracy | macro-F1 | ECE before → after | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mb = [_num(None if r.get(k) is None else r[k] / 1e6, ".2f") for k in ("bytes_on_disk", "resident_bytes")]
        latency = ("–" if r.get("latency_p50_ms") is None
                   else f"{r['latency_p50_ms']:.3f} / {r['latency_p95_ms']:.3f}")
        lines.append(
            f"| {_width_label(r)} | {r['arm']} | {r.get('embed_dims') or '–'} | {mb[0]} | {mb[1]} | {latency} | "
            f"{_num(r.get('examples_per_s_batch256'), ',.0f')} | {_num(r.get('text_to_label_examples_per_s'), ',.0f')} "
            f"| {r['test_accuracy_mean']:.2%} ± {r['test_accuracy_std']:.2%} | {_pct(r.get('test_macro_f1_mean'))} | "
            f"{_num(r.get('test_ece_uncalibrated_mean'), '.3f')} → {_num(r.get('test_ece_mean'), '.3f')} | "
            f"{r['train_seconds_mean']:.0f} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The results as Markdown tables (README-ready)."""
    t = report["teachers"]
    lines = [
        "# MatTA quality benchmark: Banking77 (official test split)", "",
        f"Teachers (test accuracy): MiniLM {t['minilm']['test_accuracy']:.2%}, ensemble (MiniLM x TF-IDF) "
        f"{t['ensemble']['test_accuracy']:.2%}; TF-IDF + LR reference {t['tfidf_lr']['test_accuracy']:.2%}. "
        f"Stronger on validation: **{t['stronger_on_validation']}**.",
        f"Budget per run: {report['budget']['epochs']} epochs = {report['budget']['steps']} steps of batch "
        f"{report['budget']['batch_size']} (`matta_equal_compute`: see below); {len(report['settings']['seeds'])} "
        "seeds; mean ± std. Every model is scored as served: int8 rows of the training split's buckets, a "
        "temperature fitted on validation.", "",
        "| regime | arm | width | dense params | test accuracy | vs CE-only (rel. err. red.) | vs KD (rel. err. red.) "
        "| Teacher gap closed | train s / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["summary"]:
        def rel(key: str, r: dict[str, Any] = r) -> str:
            return "–" if r.get(key) is None else f"{r[key]:+.1%}"
        gap = "–" if r.get("teacher_gap_closed") is None else f"{r['teacher_gap_closed']:.0%}"
        lines.append(
            f"| {r['regime']} | {r['arm']} | {_width_label(r)} | {r['dense_params']:,} | {r['test_accuracy_mean']:.2%}"
            f" ± {r['test_accuracy_std']:.2%} | {rel('rel_error_reduction_vs_ce_only')} | "
            f"{rel('rel_error_reduction_vs_kd')} | {gap} | {r['train_seconds_mean']:.0f} |")

    serving = report["serving"]
    lines += ["", "## Serving cost", "",
              f"First seed's served models, loaded as serving loads them, measured side by side in one process, "
              f"1 thread: {serving['latency_rounds']} interleaved rounds at batch 1 (model call on featurised "
              f"input), {serving['throughput_rounds']} at batch {serving['batch_size']} (model call; and raw text → "
              "label, featurisation included). Resident: what loading + one prediction add to a warm serving "
              f"process. TF-IDF + LR, text → label: {serving['tfidf_lr']['text_to_label_examples_per_s']:,.0f} "
              f"ex/s, test accuracy {t['tfidf_lr']['test_accuracy']:.2%}."]
    for regime in report["settings"]["regimes"]:
        lines += ["", f"### {regime['name']} ({regime['note']})", "", *serving_table(report, regime["name"])]

    lines += ["", "Training cost to produce every width once (main regime, per seed):", "",
              "| arm | runs | wall s | training FLOPs |", "|---|---|---|---|"]
    for arm, c in sorted(report["arm_costs"].get("main", {}).items(), key=lambda kv: ARM_ORDER.index(kv[0])):
        lines.append(f"| {arm} | {c['runs_per_seed']:.0f} | {c['train_seconds_all_widths']:.0f} | "
                     f"{c['train_flops_all_widths']:.3g} |")

    for regime, eq in report["equal_compute"].items():
        measured = eq["measured"]
        seconds = ", ".join(f"{arm} {c['train_seconds_all_widths']:.0f} s" for arm, c in measured.items())
        ratio = eq["kd_all_widths_over_matta_train_seconds"]
        basis = ("= the analytic training FLOPs of all `kd` runs" if eq["basis"] == "train_flops"
                 else f"given; the analytic FLOPs ratio is {eq['flops_ratio']:.2f}x")
        lines += ["", f"Equal compute ({regime}): `matta_equal_compute` trains {eq['multiplier']:.2f}x the epochs "
                  f"({eq['equal_compute_steps']} steps vs {eq['steps']}; {basis}; FLOPs of all `kd` runs "
                  f"{eq['kd_train_flops_all_widths']:.3g}, of one `matta` run {eq['matta_train_flops']:.3g}, of "
                  f"`matta_equal_compute` {eq['matta_equal_compute_train_flops']:.3g}). Measured wall time per "
                  f"seed, all widths: {seconds}"
                  + ("" if ratio is None else f" (all `kd` runs / one `matta` run: {ratio:.1f}x)") + ".", "",
                  "| width | kd | matta (equal budget) | matta − kd | matta_equal_compute | equal compute − kd |",
                  "|---|---|---|---|---|---|"]
        for width, e in eq["per_width"].items():
            lines.append(f"| {width} | {_pct(e.get('kd'))} | {_pct(e.get('matta'))} | "
                         f"{_num(e.get('matta_minus_kd'), '+.2%')} | {_pct(e.get('matta_equal_compute'))} | "
                         f"{_num(e.get('matta_equal_compute_minus_kd'), '+.2%')} |")

    if report["super_additivity"]:
        lines += ["", "Super-additivity (gains over CE-only, main regime):", "",
                  "| width | MatTA gain | Shampoo gain | combined | super-additive |", "|---|---|---|---|---|"]
        for w, s in report["super_additivity"].items():
            lines.append(f"| {w} | {s['matta_gain']:+.2%} | {s['shampoo_gain']:+.2%} | {s['combined_gain']:+.2%} | "
                         f"{'yes' if s['super_additive'] else 'no'} |")
    lines += ["", "## Goals", "", "| goal | met | key figures |", "|---|---|---|"]
    lines += [f"| {name} | {'met' if g['met'] else 'NOT met'} | {g.get('summary') or '–'} |"
              for name, g in report["goals"].items()]
    lines += ["", "Dense params exclude the hashed embedding table. Un-nested, every width ships the same table; "
              "nested, each width ships only its dims of it (see bytes on disk).", ""]
    return "\n".join(lines)


def chart(report: dict[str, Any], path: Path) -> None:
    """Test accuracy vs dense (non-embedding) parameters, one line per arm, ± std bars; a panel per regime, and for
    a nested-embedding regime a second panel against bytes on disk (there the table shrinks with the width)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = []
    for regime in report["settings"]["regimes"]:
        panels.append((regime["name"], "dense_params",
                       "dense parameters (MLP + head; the hashed table is excluded)"))
        if regime["student_embed_dim"] is not None:
            panels.append((regime["name"], "bytes_on_disk", "bytes on disk of the served model (first seed)"))
    cols = min(2, len(panels))
    figure = Figure(figsize=(6.5 * cols, 4.6 * math.ceil(len(panels) / cols)), dpi=110)
    FigureCanvasAgg(figure)
    t = report["teachers"]
    for i, (regime, x_key, x_label) in enumerate(panels):
        axes = figure.add_subplot(math.ceil(len(panels) / cols), cols, i + 1)
        rows = [r for r in report["summary"] if r["regime"] == regime and r.get(x_key) is not None]
        for arm in [a for a in ARM_ORDER if any(r["arm"] == a for r in rows)]:
            line = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r[x_key])
            axes.errorbar([r[x_key] for r in line], [r["test_accuracy_mean"] for r in line],
                          yerr=[r["test_accuracy_std"] for r in line], marker="o", capsize=3, label=arm,
                          color=f"C{ARM_ORDER.index(arm)}")  # one colour per arm in every panel
        teacher = rows[0]["teacher"] if rows else "minilm"
        axes.axhline(t[teacher]["test_accuracy"], ls="--", color="black", lw=1, label=f"Teacher ({teacher})")
        axes.axhline(t["tfidf_lr"]["test_accuracy"], ls=":", color="gray", lw=1, label="TF-IDF + LR")
        axes.set_xscale("log")
        axes.set_xlabel(x_label)
        axes.set_ylabel("test accuracy")
        axes.set_title(f"Banking77 — {regime}" + (" (by bytes)" if x_key == "bytes_on_disk" else ""))
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, format="png")


def machine() -> dict[str, Any]:
    import torch

    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "load_avg_1m_at_start": os.getloadavg()[0]}


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (a few minutes): checks plumbing, not "
                        "method")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the .json/.md/.png results")
    parser.add_argument("--mirror-dir", default=os.environ.get("MATTA_DATA_MIRROR"),
                        help="offline Banking77 mirror (default: $MATTA_DATA_MIRROR, else download + verify)")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".matta_cache",
                        help="Teacher-output cache (shared with pipeline runs; content-addressed)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="prepared data and served models (default: <cache-dir>/benchmarks/<stem>, outside the "
                             "results folder)")
    parser.add_argument("--workers", type=int, default=2, help="training processes, one torch thread each")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the seeds")
    parser.add_argument("--equal-compute-multiplier", type=float, default=None,
                        help="epochs multiplier of matta_equal_compute in every regime, instead of the analytic "
                             "FLOPs ratio (e.g. a measured wall-time ratio); recorded with basis 'given'")
    parser.add_argument("--keep-served", action="store_true",
                        help="keep the served models saved for the serving pass (default: removed at the end)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.seeds:
        settings = replace(settings, seeds=tuple(args.seeds))
    started = time.perf_counter()
    info = machine()
    work_dir = args.work_dir or args.cache_dir / "benchmarks" / STEM
    splits, hashes = load_splits(work_dir, args.mirror_dir, settings)

    minilm = minilm_logits(splits, hashes, args.cache_dir)
    t0 = time.perf_counter()
    tfidf = fit_tfidf(splits.texts["train"], splits.labels["train"], settings.tfidf_max_iter)
    tfidf_fit_seconds = time.perf_counter() - t0
    tfidf_logits = {s: tfidf.decision_function(splits.texts[s]).astype(np.float32) for s in splits.texts}
    # Ensemble = mean of log-probabilities (a product of experts): agreement sharpens, disagreement softens.
    ensemble = {s: ((log_softmax(minilm[s]) + log_softmax(tfidf_logits[s])) / 2).astype(np.float32)
                for s in splits.texts}
    splits.teacher_logits = {"minilm": minilm, "ensemble": ensemble}
    teachers = {
        name: {"val_accuracy": accuracy(lg["validation"], splits.labels["validation"]),
               "test_accuracy": accuracy(lg["test"], splits.labels["test"]),
               "train_accuracy": accuracy(lg["train"], splits.labels["train"])}
        for name, lg in {"minilm": minilm, "ensemble": ensemble, "tfidf_lr": tfidf_logits}.items()
    }
    teachers["tfidf_lr"]["fit_seconds"] = tfidf_fit_seconds
    teachers["stronger_on_validation"] = max(("minilm", "ensemble"), key=lambda n: teachers[n]["val_accuracy"])
    print("teachers:", json.dumps(teachers), flush=True)

    plans = {regime.name: equal_compute_plan(regime, settings.epochs, splits.texts["train"],
                                             args.equal_compute_multiplier)
             for regime in settings.regimes if "matta_equal_compute" in regime.arms}
    print("equal compute:", json.dumps(plans), flush=True)
    # A fresh folder per run: models of an earlier (or concurrent) run are never measured as this run's.
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    serve_root = work_dir / "served" / f"{stamp}-{os.getpid()}"
    serve_root.mkdir(parents=True)
    jobs = make_jobs(settings, {}, {name: plan["multiplier"] for name, plan in plans.items()}, serve_root)
    records = reuse_single_run(run_all(jobs, splits, args.workers))
    # After training, so the timings do not compete with the training workers.
    serving = measure_serving(records, splits, tfidf, settings)
    if not args.keep_served:
        shutil.rmtree(serve_root)

    teacher_acc = {name: teachers[name]["test_accuracy"] for name in ("minilm", "ensemble")}
    regime_order = [r.name for r in settings.regimes]
    summary = sorted(summarise(records, teacher_acc), key=lambda r: regime_order.index(r["regime"]))
    attach_serving(summary, serving)
    costs = {regime.name: arm_costs(records, regime.name) for regime in settings.regimes}
    equal_compute = equal_compute_summary(summary, costs, plans)
    budget_run = next(r for r in records if r["arm"] != "matta_equal_compute")
    report = {
        "benchmark": "quality_banking77", "quick": args.quick, "machine": info,
        "settings": {"seeds": list(settings.seeds), "epochs": settings.epochs, "workers": args.workers,
                     "limit_train_rows": settings.limit_train_rows, "limit_test_rows": settings.limit_test_rows,
                     "latency_rounds": settings.latency_rounds, "throughput_rounds": settings.throughput_rounds,
                     "regimes": [asdict(r) for r in settings.regimes],
                     "train_config": train_config(Job(settings.regimes[0], "matta", 1, settings.seeds[0],
                                                      settings.epochs)).to_dict(),
                     "served": {"embedding_dtype": SERVED_DTYPE, "embedding_rows": "trained",
                                "temperature": "fitted on the validation split"},
                     "served_models_dir": str(serve_root) if args.keep_served else None},
        "budget": {"epochs": settings.epochs, "steps": budget_run["steps"], "batch_size": budget_run["batch_size"],
                   "train_rows": len(splits.texts["train"]), "test_rows": len(splits.texts["test"])},
        "teachers": teachers,
        "runs": records,
        "summary": summary,
        "arm_costs": costs,
        "equal_compute": equal_compute,
        "serving": serving,
        "super_additivity": super_additivity(summary),
        "notes": [
            "every record is of the served model: int8 compact table of the training split's buckets, temperature "
            "fitted on validation (ece = calibrated, ece_uncalibrated = before); *_accuracy_float32 is the float32 "
            "extraction's",
            "dense params exclude the hashed embedding table; un-nested regimes ship the same table at every width",
            "serving figures are the first seed's models, measured side by side after training (see `serving`)",
            "train_seconds are wall seconds of the training loop, measured with --workers processes running at once "
            "on a machine shared with other jobs; train_flops are analytic (3 x forward matrix products)",
            "beyond 1 std: mean - std of the arm > mean + std of the reference (non-overlapping ±1 std intervals)",
        ],
    }
    report["goals"] = {
        **goals(summary, costs.get("main", {}), serving, teachers["tfidf_lr"]["test_accuracy"]),
        **serving_goals(summary, serving, teachers["tfidf_lr"]["test_accuracy"], equal_compute),
    }
    report["machine"]["load_avg_1m_at_end"] = os.getloadavg()[0]
    report["total_seconds"] = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{STEM}.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    (args.out / f"{STEM}.md").write_text(markdown(report))
    chart(report, args.out / f"{STEM}.png")
    print(markdown(report))
    print(f"total {report['total_seconds']:.0f} s; wrote {args.out / STEM}.{{json,md,png}}")
    return report


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
