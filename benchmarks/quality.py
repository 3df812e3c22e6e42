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

This file trains and scores; beside it, `quality_serving.py` is the serving pass, `quality_goals.py` the
conclusions (costs, equal compute, goals), `quality_report.py` the Markdown and the chart, `quality_arms.py` the arms.
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
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from quality_arms import ARM_ORDER, BASE_ARM, SINGLE_RUN_ARMS
from quality_goals import arm_costs, equal_compute_summary, goals, serving_goals, super_additivity
from quality_report import chart, markdown
from quality_serving import attach_serving, measure_serving

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
STEM = "quality_banking77"
NUM_CLASSES = 77
# How a width is served (the extract step's defaults): int8 rows, the training split's buckets only.
SERVED_DTYPE = "int8"


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
