"""A small, recorded search for the MatTA defaults, scored on the VALIDATION split only (the test split is dropped
before any run starts, so it cannot leak into a choice).

Objective: mean validation accuracy over the benchmark's widths (32..512) of ONE MatTA run (Student 32, every other
width extracted), i.e. exactly what `benchmarks/quality.py` measures for the `matta` arm, at its budget (15 epochs).

Stage 1 (one seed): from the current defaults, change one setting at a time (temperature, alpha, gamma, warm-up,
TA width, sandwich_k, sample_low, learning rate). Stage 2 (more seeds): every stage-1 winner that beat the
baseline by more than `--margin`, combined, against the baseline, to check the changes hold up together and on
other seeds. 1,009 validation rows: one seed's accuracy moves by ~0.3 points from noise alone, hence stage 2.
Stage 3 (fairness of the baselines): the learning rate is shared by every arm (equal budget), so `kd` and
`ce_only` are run at the old and the chosen learning rate too; a change that helped MatTA but hurt the
baselines would make the comparison unfair, and the record shows whether it does.

    .venv/bin/python benchmarks/tune_matta.py [--mirror-dir DIR] [--workers 2] [--out benchmarks/results]

Round "embedding" (`--round embedding --append`): the nested embedding (`ClassifierConfig.student_embed_dim`),
which makes a narrow width's table narrow. Candidates: no nesting (baseline), Student dims 32 and 48, a wider TA
embedding (256 dims, Student 32), and Student 32 with min_embed_dim 16. The model is the library's (TA 1024,
Student 64, the default training settings and budget); every width 32..1024 is extracted and scored on validation,
and each record carries the dims the width reads and its int8 compact table size (trained rows only). Objective:
the same mean over the benchmark widths (32..512), next to the Student's and the narrowest width's accuracy and
bytes. `--seeds` (default 0) runs every candidate on each seed in turn, in the order of `EMBEDDING`; no run starts
that would end after `--time-box-minutes` (the record lists what did not run).

Round "levers" (`--round levers --append`): the TA route's levers one at a time (TA-only warm-up, every width's
loss each step, TA capacity, importance ordering of a warm start); see `benchmarks/tune_levers.py`.

Writes `tune_matta.json`: every run's record, each candidate's score, and the chosen settings, one entry of
`rounds` per search. `--append` adds a round to the file: after a round's winners became the library defaults, the
next round starts from them (coordinate descent; candidates equal to the current defaults are skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # benchmarks/ is not a package: the sibling script is imported by path

WIDTHS = (32, 64, 128, 256, 512)
BASE_REGIME = quality.Regime("tune", WIDTHS, ("matta",), note="MiniLM Teacher, 2^18 x 128 table")
# name -> (train overrides, TA width); "loss" overrides are LossConfig fields.
STAGE1: dict[str, tuple[dict[str, Any], int]] = {
    "baseline": ({}, 1024),
    "temperature=1": ({"loss": {"temperature": 1.0}}, 1024),
    "temperature=2": ({"loss": {"temperature": 2.0}}, 1024),
    "temperature=8": ({"loss": {"temperature": 8.0}}, 1024),
    "alpha=0.2": ({"loss": {"teacher_weight": 0.2}}, 1024),
    "alpha=0.8": ({"loss": {"teacher_weight": 0.8}}, 1024),
    "alpha=1.0": ({"loss": {"teacher_weight": 1.0}}, 1024),
    "gamma=0": ({"loss": {"ta_distill_weight": 0.0}}, 1024),
    "gamma=1": ({"loss": {"ta_distill_weight": 1.0}}, 1024),
    "gamma=2": ({"loss": {"ta_distill_weight": 2.0}}, 1024),
    "warmup=0": ({"loss": {"ta_distill_warmup": 0.0}}, 1024),
    "warmup=0.5": ({"loss": {"ta_distill_warmup": 0.5}}, 1024),
    "ta=512": ({}, 512),
    "ta=2048": ({}, 2048),
    "sandwich_k=0": ({"sandwich_k": 0}, 1024),
    "sandwich_k=1": ({"sandwich_k": 1}, 1024),
    "sandwich_k=4": ({"sandwich_k": 4}, 1024),
    "sample_low=16": ({"sample_low": 16}, 1024),
    "sample_low=32": ({"sample_low": 32}, 1024),
    "lr=1e-3": ({"lr": 1e-3}, 1024),
    "lr=3e-3": ({"lr": 3e-3}, 1024),
    "lr=1e-2": ({"lr": 1e-2}, 1024),
    "lr=3e-2": ({"lr": 3e-2}, 1024),
    "student_weight=2": ({"loss": {"student_weight": 2.0}}, 1024),
    "ta_weight=0.5": ({"loss": {"ta_weight": 0.5}}, 1024),
}
# Settings that are alternatives of one knob: at most one of each group goes into the combination.
KNOBS = ("temperature", "alpha", "gamma", "warmup", "ta", "sandwich_k", "sample_low", "lr", "student_weight",
         "ta_weight")


# Round "embedding": the library's Student (64) and its served widths plus the TA, so size goals can be read off.
EMBED_STUDENT = 64
EMBED_WIDTHS = (32, 64, 128, 256, 512, 1024)
EMBED_REGIME = quality.Regime("tune_embedding", EMBED_WIDTHS, ("matta",),
                              note="MiniLM Teacher, 2^18 hashed table, TA 1024, Student 64")
# name -> Regime fields; run in this order, so a time box keeps the first ones: (a), (b), (d), (c), (e).
EMBEDDING: dict[str, dict[str, Any]] = {
    "baseline": {},
    "student_embed_dim=32": {"student_embed_dim": 32},
    "embed_dim=256,student_embed_dim=32": {"embed_dim": 256, "student_embed_dim": 32},
    "student_embed_dim=48": {"student_embed_dim": 48},
    "student_embed_dim=32,min_embed_dim=16": {"student_embed_dim": 32, "min_embed_dim": 16},
}
DENSE_BYTES_PER_PARAM = 4  # a compact extraction keeps the MLP and head in float32


def is_default(overrides: dict[str, Any], ta_width: int) -> bool:
    """True when a candidate only restates the current defaults (a later round's baseline): no need to run it."""
    defaults = quality.train_config(jobs_for("x", {}, 1024, [0], 1.0)[0]).to_dict()
    flat = {**{k: v for k, v in overrides.items() if k != "loss"}, **overrides.get("loss", {})}
    current = {**defaults, **defaults["loss"]}
    return bool(flat) and ta_width == 1024 and all(current.get(k) == v for k, v in flat.items())


def jobs_for(name: str, overrides: dict[str, Any], ta_width: int, seeds: Sequence[int], epochs: float) -> list[Any]:
    regime = replace(BASE_REGIME, ta_width=ta_width)
    return [quality.Job(regime, "matta", min(WIDTHS), seed, epochs, overrides, ("validation",), name)
            for seed in seeds]


def merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            merged[key] = {**merged.get(key, {}), **value} if key == "loss" else value
    return merged


def scores(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per candidate: mean validation accuracy over widths and seeds, per-seed means, and per-width means."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["run_id"].split("/", 4)[4] for r in records):
        runs = [r for r in records if r["run_id"].endswith(f"/{name}")]
        per_seed = {s: float(np.mean([r["val_accuracy"] for r in runs if r["seed"] == s]))
                    for s in sorted({r["seed"] for r in runs})}
        out[name] = {"val_accuracy_mean_over_widths": float(np.mean(list(per_seed.values()))),
                     "per_seed": per_seed,
                     "per_width": {w: float(np.mean([r["val_accuracy"] for r in runs if r["width"] == w]))
                                   for w in WIDTHS},
                     "train_seconds_mean": float(np.mean([r["train_seconds"] for r in runs]))}
    return out


def baseline_check(splits: Any, args: argparse.Namespace, new_lr: float | None) -> dict[str, Any]:
    """Validation accuracy of `kd` and `ce_only` (widths 32 and 512, seeds 0-1) at the old and the new lr."""
    if new_lr is None:
        return {}
    old_lr = quality.train_config(jobs_for("x", {}, 1024, [0], 1.0)[0]).lr
    jobs = [quality.Job(BASE_REGIME, arm, width, seed, args.epochs, {"lr": lr}, ("validation",), f"lr={lr:g}")
            for arm in ("kd", "ce_only") for width in (32, 512) for seed in (0, 1) for lr in (old_lr, new_lr)]
    records = quality.run_all(jobs, splits, args.workers)
    out: dict[str, Any] = {"records": records}
    for arm in ("kd", "ce_only"):
        out[arm] = {f"lr={lr:g}": float(np.mean([r["val_accuracy"] for r in records
                                                  if r["arm"] == arm and r["run_id"].endswith(f"lr={lr:g}")]))
                    for lr in (old_lr, new_lr)}
    print("baselines at old vs new lr:", {arm: out[arm] for arm in ("kd", "ce_only")}, flush=True)
    return out


def run_timeboxed(jobs: Sequence[Any], splits: Any, workers: int, deadline: float,
                  run: Callable[[Any], list[dict[str, Any]]] = quality.run_job
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """Run `jobs` in order like `quality.run_all` (each with `run`, a module-level function a spawned worker can
    import), but start none that would end after `deadline` (perf_counter seconds; a run is assumed to take as long
    as the longest finished one). Returns the records and the run ids that did not run."""
    records: list[dict[str, Any]] = []
    pending, running = deque(jobs), {}
    longest, started = 0.0, time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=quality._init_worker,
                             initargs=(splits,)) as pool:
        while pending or running:
            while pending and len(running) < workers and time.perf_counter() + longest <= deadline:
                job = pending.popleft()
                running[pool.submit(run, job)] = (job, time.perf_counter())
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job, began = running.pop(future)
                longest = max(longest, time.perf_counter() - began)
                batch = future.result()
                records += batch
                print(f"[{time.perf_counter() - started:7.1f} s] {job.run_id}: "
                      + ", ".join(f"{r['width']}={r['val_accuracy']:.4f}/{r['embed_dims']}d" for r in batch),
                      flush=True)
    return records, [j.run_id for j in pending]


def embedding_scores(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per candidate (means over its seeds): accuracy per width, the mean over the benchmark widths, the Student's
    and the narrowest width's accuracy, and each width's dims and bytes (int8 table; with the float32 MLP + head)."""
    out: dict[str, dict[str, Any]] = {}
    narrowest, ta = min(EMBED_WIDTHS), max(EMBED_WIDTHS)
    for name in dict.fromkeys(r["run_id"].split("/", 4)[4] for r in records):
        runs = [r for r in records if r["run_id"].endswith(f"/{name}")]
        seeds = sorted({r["seed"] for r in runs})
        by_width = {w: [r for r in runs if r["width"] == w] for w in EMBED_WIDTHS}
        acc = {w: float(np.mean([r["val_accuracy"] for r in rs])) for w, rs in by_width.items()}
        per_seed = {s: float(np.mean([r["val_accuracy"] for r in runs if r["seed"] == s and r["width"] in WIDTHS]))
                    for s in seeds}
        table = {w: rs[0]["table_bytes_estimate"] for w, rs in by_width.items()}
        total = {w: rs[0]["table_bytes_estimate"] + DENSE_BYTES_PER_PARAM * rs[0]["dense_params"]
                 for w, rs in by_width.items()}
        out[name] = {
            "seeds": seeds, "val_accuracy_mean_over_widths": float(np.mean(list(per_seed.values()))),
            "per_seed": per_seed, "per_width": acc,
            "student_val_accuracy": acc[EMBED_STUDENT], "narrowest_val_accuracy": acc[narrowest],
            "ta_val_accuracy": acc[ta],
            "embed_dims": {w: rs[0]["embed_dims"] for w, rs in by_width.items()},
            "table_bytes_estimate": table, "bytes_estimate_with_dense": total,
            "student_table_bytes": table[EMBED_STUDENT], "narrowest_table_bytes": table[narrowest],
            "narrowest_over_ta_table_bytes": table[narrowest] / table[ta],
            "narrowest_over_ta_bytes_with_dense": total[narrowest] / total[ta],
            "train_seconds_mean": float(np.mean([r["train_seconds"] for r in runs])),
        }
    return out


def embedding_round(splits: Any, args: argparse.Namespace, started: float) -> dict[str, Any]:
    """The nested-embedding comparison (see the module doc), one seed after another, within the time box."""
    jobs = [quality.Job(replace(EMBED_REGIME, **fields), "matta", EMBED_STUDENT, seed, args.epochs, {},
                        ("validation",), name)
            for seed in args.seeds for name, fields in EMBEDDING.items()]
    records, not_run = run_timeboxed(jobs, splits, args.workers, started + 60.0 * args.time_box_minutes)
    found = embedding_scores(records)
    print(f"{'candidate':>38} | Student | narrowest | mean 32-512 | Student bytes | narrowest bytes | seeds")
    for name, s in found.items():
        print(f"{name:>38} | {s['student_val_accuracy']:.4f} | {s['narrowest_val_accuracy']:.4f} | "
              f"{s['val_accuracy_mean_over_widths']:.4f} | {s['student_table_bytes']:,} | "
              f"{s['narrowest_table_bytes']:,} | {s['seeds']}", flush=True)
    return {
        "benchmark": "tune_matta", "round": "embedding", "split": "validation",
        "objective": "mean val accuracy over widths " + str(WIDTHS) + "; also the Student's (64) and the narrowest "
                     "width's (32) accuracy and bytes",
        "epochs": args.epochs, "machine": quality.machine(), "workers": args.workers, "seeds": list(args.seeds),
        "student_width": EMBED_STUDENT, "widths": list(EMBED_WIDTHS), "time_box_minutes": args.time_box_minutes,
        "defaults_at_search_time": {"train_config": quality.train_config(jobs[0]).to_dict(), "ta_width": 1024},
        "candidates": {name: {**asdict(replace(EMBED_REGIME, **fields)), "widths": list(EMBED_WIDTHS)}
                       for name, fields in EMBEDDING.items()},
        "scores": found, "not_run": not_run, "runs": records,
        "notes": [
            "table_bytes_estimate: kept rows x (dims + 12) bytes, the int8 compact table of trained rows (int8 "
            "values, float32 scale, int32 bucket id, float32 IDF per row); kept rows = distinct buckets of the "
            "training split; bytes_estimate_with_dense adds 4 bytes per MLP + head parameter",
            "accuracy is of the float32 extraction (as in every other round), not of the int8 compact model",
        ],
        "total_seconds": time.perf_counter() - started,
    }


def write_round(args: argparse.Namespace, report: dict[str, Any]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "tune_matta.json"
    rounds = []
    if args.append and path.is_file():
        previous = json.loads(path.read_text())
        rounds = previous.get("rounds", [previous])
    document = {"benchmark": "tune_matta", "rounds": [*rounds, report]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=quality.DEFAULT_OUT)
    parser.add_argument("--mirror-dir", default=os.environ.get("MATTA_DATA_MIRROR"))
    parser.add_argument("--cache-dir", type=Path, default=quality.REPO_ROOT / ".matta_cache")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=quality.FULL.epochs)
    parser.add_argument("--margin", type=float, default=0.001, help="stage-1 gain over baseline to keep a change")
    parser.add_argument("--stage2-seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--append", action="store_true",
                        help="add this search as a further round to an existing tune_matta.json (coordinate descent: "
                             "a round starts from the defaults the previous rounds chose)")
    parser.add_argument("--round", choices=("defaults", "embedding", "levers"), default="defaults",
                        help="defaults: the training-settings search (stages 1-3); embedding: the nested embedding; "
                             "levers: the TA route's levers (benchmarks/tune_levers.py)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="rounds embedding, levers: seeds, run in turn")
    parser.add_argument("--time-box-minutes", type=float, default=50.0,
                        help="rounds embedding, levers: start no run that would end later than this after the start")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    splits, hashes = quality.load_splits(args.cache_dir / "benchmarks" / "tune", args.mirror_dir, quality.FULL)
    splits.teacher_logits = {"minilm": quality.minilm_logits(splits, hashes, args.cache_dir)}
    for table in (splits.texts, splits.labels, splits.teacher_logits["minilm"]):
        table.pop("test")  # from here on nothing can score the test split
    if args.round in ("embedding", "levers"):
        if args.round == "levers":
            import tune_levers  # imports this module: not at the top

            report = tune_levers.levers_round(splits, args, started)
        else:
            report = embedding_round(splits, args, started)
        write_round(args, report)
        print(f"{report['total_seconds']:.0f} s; not run: {report['not_run'] or 'none'}")
        return report

    candidates = {name: spec for name, spec in STAGE1.items() if not is_default(*spec)}
    stage1_jobs = [j for name, (o, ta) in candidates.items() for j in jobs_for(name, o, ta, [0], args.epochs)]
    records = quality.run_all(stage1_jobs, splits, args.workers)
    stage1 = scores(records)
    base = stage1["baseline"]["val_accuracy_mean_over_widths"]
    best_per_knob: dict[str, str] = {}
    for knob in KNOBS:
        options = [n for n in stage1 if n.split("=")[0] == knob]
        best = max(options, key=lambda n: stage1[n]["val_accuracy_mean_over_widths"])
        if stage1[best]["val_accuracy_mean_over_widths"] > base + args.margin:
            best_per_knob[knob] = best
    winners = list(best_per_knob.values())
    combined = merge([STAGE1[n][0] for n in winners])
    ta_width = next((STAGE1[n][1] for n in winners if n.startswith("ta=")), 1024)
    print("stage 1 winners:", winners, flush=True)

    stage2_jobs = jobs_for("baseline", {}, 1024, args.stage2_seeds, args.epochs)
    if winners:
        stage2_jobs += jobs_for("combined", combined, ta_width, [0, *args.stage2_seeds], args.epochs)
    records += quality.run_all(stage2_jobs, splits, args.workers)
    final = scores(records)
    chosen = "combined" if winners and (final["combined"]["val_accuracy_mean_over_widths"]
                                        > final["baseline"]["val_accuracy_mean_over_widths"]) else "baseline"
    baselines = baseline_check(splits, args, combined.get("lr") if chosen == "combined" else None)
    report = {
        "benchmark": "tune_matta", "split": "validation", "objective": "mean val accuracy over widths " + str(WIDTHS),
        "epochs": args.epochs, "machine": quality.machine(),
        # "baseline" means these: the library defaults when the search ran (it may have changed them since).
        "defaults_at_search_time": {"train_config": quality.train_config(jobs_for("x", {}, 1024, [0], 1.0)[0])
                                    .to_dict(), "ta_width": 1024}, "stage1_candidates": {n: {"train_overrides": o,
                                                                                       "ta_width": t}
                                                                                   for n, (o, t) in candidates.items()},
        "stage1_scores": stage1, "stage1_winners": winners,
        "combined": {"train_overrides": combined, "ta_width": ta_width},
        "final_scores": {k: final[k] for k in ("baseline", "combined") if k in final},
        "chosen": chosen, "baseline_lr_check": baselines, "runs": records,
        "total_seconds": time.perf_counter() - started,
    }
    write_round(args, report)
    for name, s in final.items():
        print(f"{name:>16}: {s['val_accuracy_mean_over_widths']:.4f}  {s['per_seed']}")
    print(f"chosen: {chosen} {combined if chosen == 'combined' else {}}; {report['total_seconds']:.0f} s")
    return report


if __name__ == "__main__":
    main()
