"""Round "levers" of `benchmarks/tune_matta.py` (`--round levers --append`): what the literature says makes the TA
route beat direct KD, tried one at a time on the VALIDATION split (issue 15, item 5).

The model is the library's (TA 1024, Student 64, 2^18 x 128 table, no embedding nesting: it stays opt-in), at the
default training settings and budget (15 epochs); every width 32..1024 is extracted (float32) and scored on
validation, and the objective is the other rounds': mean validation accuracy over widths 32..512, next to the
Student's, the narrowest width's and the TA's. Candidates (`LEVERS`, run in this order for each seed in turn):

- `baseline`: the defaults (the embedding round's baseline again: the same runs, so the same numbers);
- `ta_distill_warmup=0.3` / `=0.5`: a longer TA-only warm-up before the TA -> Student term starts (today 15 %);
- `loss_widths=extracted`: the loss at every width the pipeline extracts by default (16, 32, 128, 256, 512 besides
  the TA and the Student) every step, instead of 2 sampled widths ("Starbucks"-style training of nested sizes);
- `ta=2048`, `embed_dim=256,student_embed_dim=128,min_embed_dim=128`: more TA capacity, in the MLP or in the
  embedding (the Student and every width below it read the same 128 dims as today; wider widths read more);
- `init_from=kd-256,ordered` / `unordered`: a warm start from a trained model wider than the Student (a KD Student
  of width 256, same seed and budget, trained first in the same worker), its hidden units ordered by importance
  before the Student slice takes the first 64 (`warm_start.order_by_importance`, what `model.init_from` does) or
  copied in their trained order. Both start from the same weights, so ordered vs unordered isolates the ordering;
  against `baseline` they also had the KD run's extra training, so that comparison is not at equal budget.

No run starts that would end after `--time-box-minutes`; the record lists what did not run.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import quality
import tune_matta

# name -> {"regime": Regime fields, "train": TrainConfig overrides, "warm": None | "ordered" | "unordered"}
EXTRACTED_BESIDES_TA_AND_STUDENT = [[16], [32], [128], [256], [512]]  # PipelineConfig.widths' defaults
LEVERS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "ta_distill_warmup=0.3": {"train": {"loss": {"ta_distill_warmup": 0.3}}},
    "ta_distill_warmup=0.5": {"train": {"loss": {"ta_distill_warmup": 0.5}}},
    "loss_widths=extracted": {"train": {"loss_widths": EXTRACTED_BESIDES_TA_AND_STUDENT}},
    "ta=2048": {"regime": {"ta_width": 2048}},
    "embed_dim=256,student_embed_dim=128,min_embed_dim=128": {
        "regime": {"embed_dim": 256, "student_embed_dim": 128, "min_embed_dim": 128}},
    "init_from=kd-256,ordered": {"warm": "ordered"},
    "init_from=kd-256,unordered": {"warm": "unordered"},
}
WARM_SOURCE_WIDTH = 256


def jobs(seeds: list[int], epochs: float) -> list[quality.Job]:
    """Every candidate for each seed in turn (a time box keeps whole seeds); the warm-start kind rides in the tag."""
    out = []
    for seed in seeds:
        for name, spec in LEVERS.items():
            # The round compares against sampling (the default when it ran); a candidate's overrides say otherwise.
            regime = replace(tune_matta.EMBED_REGIME, name="tune_levers", widths_per_step="sampled",
                             **spec.get("regime", {}))
            out.append(quality.Job(regime, "matta", tune_matta.EMBED_STUDENT, seed, epochs, spec.get("train", {}),
                                   ("validation",), name))
    return out


def run_lever(job: quality.Job) -> list[dict[str, Any]]:
    """Train one candidate (after its warm-start source, if any) and score every width on validation."""
    from matta_core.families.classifier.data import TrainingData
    from matta_core.families.classifier.evaluate import evaluate_model
    from matta_core.families.classifier.extract import extract
    from matta_core.families.classifier.trainer import train

    splits = quality._WORKER["splits"]
    regime = job.regime
    config = quality.model_config(regime, job.student_width)
    features = quality._features(regime.num_buckets, "train")
    data = TrainingData(features, splits.labels["train"], splits.teacher_logits[regime.teacher]["train"],
                        num_classes=quality.NUM_CLASSES)
    warm_kind = LEVERS[job.tag].get("warm")
    warm = None if warm_kind is None else warm_start_from_kd(job, data, ordered=warm_kind == "ordered")
    tconfig = quality.train_config(job)
    model, result = train(config, data, tconfig, warm_start=warm)
    rows = quality.kept_rows(regime.num_buckets)
    records = []
    for width in tune_matta.EMBED_WIDTHS:
        evaluation = evaluate_model(extract(model, (width,)), quality._features(regime.num_buckets, "validation"),
                                    splits.labels["validation"], measure_speed=False, name=str(width))
        dims = config.embed_dim_for((width,))
        records.append({
            "regime": regime.name, "arm": job.arm, "width": width, "student_width": job.student_width,
            "ta_width": regime.ta_width, "seed": job.seed, "params": evaluation.params.total,
            "dense_params": evaluation.params.dense, "embed_dims": dims, "kept_rows": rows,
            "table_bytes_estimate": quality.compact_table_bytes(rows, dims),
            "val_accuracy": evaluation.metrics["accuracy"], "val_macro_f1": evaluation.metrics["macro_f1"],
            "val_nll": evaluation.metrics["nll"], "train_seconds": result.wall_seconds, "steps": result.steps,
            "run_id": job.run_id, "train_overrides": job.train_overrides, "warm_start": warm_kind,
        })
    return records


def warm_start_from_kd(job: quality.Job, data: Any, *, ordered: bool) -> Any:
    """A KD Student of width `WARM_SOURCE_WIDTH` (same seed, budget and data order), as a warm start whose hidden
    units are importance-ordered (what `model.init_from` does) or copied in their trained order."""
    from matta_core.families.classifier.extract import extract, extracted_config
    from matta_core.families.classifier.trainer import train
    from matta_core.families.classifier.warm_start import (
        WarmStart,
        WarmStartSource,
        copy_into,
        standalone_weights,
    )

    source_config = quality.model_config(job.regime, WARM_SOURCE_WIDTH)
    kd_job = replace(job, arm="kd", student_width=WARM_SOURCE_WIDTH, train_overrides={})
    kd_model, _ = train(source_config, data, quality.train_config(kd_job))
    saved = extract(kd_model, (WARM_SOURCE_WIDTH,))
    saved_config = extracted_config(source_config.sub_config((WARM_SOURCE_WIDTH,)), (WARM_SOURCE_WIDTH,))

    class InTrainedOrder(WarmStart):
        def apply(self, model: Any) -> None:
            self.check(model.config)
            copy_into(model, self.weights)

    kind = WarmStart if ordered else InTrainedOrder
    return kind(WarmStartSource(f"kd-{WARM_SOURCE_WIDTH}/seed{job.seed}"), saved_config, standalone_weights(saved))


def levers_round(splits: Any, args: argparse.Namespace, started: float) -> dict[str, Any]:
    """Run the candidates within the time box and score them like the embedding round."""
    todo = jobs(list(args.seeds), args.epochs)
    records, not_run = tune_matta.run_timeboxed(todo, splits, args.workers, started + 60.0 * args.time_box_minutes,
                                                 run=run_lever)
    found = tune_matta.embedding_scores(records)
    base = found.get("baseline", {}).get("val_accuracy_mean_over_widths")
    print(f"{'candidate':>36} | Student | narrowest | TA | mean 32-512 | vs baseline | seeds")
    for name, s in found.items():
        delta = "" if base is None else f"{s['val_accuracy_mean_over_widths'] - base:+.4f}"
        print(f"{name:>36} | {s['student_val_accuracy']:.4f} | {s['narrowest_val_accuracy']:.4f} | "
              f"{s['ta_val_accuracy']:.4f} | {s['val_accuracy_mean_over_widths']:.4f} | {delta} | {s['seeds']}",
              flush=True)
    return {
        "benchmark": "tune_matta", "round": "levers", "split": "validation",
        "objective": "mean val accuracy over widths " + str(tune_matta.WIDTHS) + "; also the Student's (64), the "
                     "narrowest width's (32) and the TA's (1024) accuracy",
        "epochs": args.epochs, "machine": quality.machine(), "workers": args.workers, "seeds": list(args.seeds),
        "student_width": tune_matta.EMBED_STUDENT, "widths": list(tune_matta.EMBED_WIDTHS),
        "time_box_minutes": args.time_box_minutes,
        "defaults_at_search_time": {"train_config": quality.train_config(todo[0]).to_dict(), "ta_width": 1024},
        "candidates": LEVERS, "warm_source_width": WARM_SOURCE_WIDTH,
        "scores": found, "not_run": not_run, "runs": records,
        "notes": [
            "accuracy is of the float32 extraction, as in every other round",
            "init_from candidates: the KD source run's training comes on top of the MatTA run's budget; compare "
            "ordered with unordered (same source weights), not with baseline at equal budget",
            "loss_widths=extracted computes 5 extra heads per step (vs 2 sampled): more head compute per step; the "
            "embedding bag, most of a step's cost, is shared",
        ],
        "total_seconds": time.perf_counter() - started,
    }
