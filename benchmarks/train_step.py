"""Benchmark: what a joint MatTA step costs over a TA-only step, and what extracted sub-models cost to serve.

Part 1, training step (default config: 2^18 buckets x 128 dims, hidden (1024,), Student (64,), Banking77 texts,
batch 128, the trainer's optimizer: SparseAdam for the sparse-gradient table, AdamW for the MLP). Three arms share
one model and one optimizer and run on the same batch in each round, in rotating order (ABC, BCA, CAB, ...), so
drifting machine load hits all arms alike:

- `ta`: embed once, TA logits, KD loss against Teacher logits (+ CE on labels), backward, optimizer step.
- `joint`: embed once, TA + Student + `--sandwich-k` sampled widths, `matta_loss`, backward, optimizer step.
- `joint_k0`: the same with no sampled widths.

The Teacher's logits are random but fixed (seeded, scaled to a confident softmax): a step's cost does not depend
on their values, and in the pipeline they are read from the Teacher cache, never computed in the step.

Part 2, serving: widths are extracted from a (randomly initialised: cost does not depend on the weights) nested
model and each standalone model's batch-1 latency and batch-256 throughput are measured, interleaved across
models round by round, on the same examples for every model. Run for the default 1-layer config and a 2-layer
config, which also has Mix'n'Match sub-models (different widths per layer).

    python benchmarks/train_step.py            # full run, ~1 minute on 2 idle cores
    python benchmarks/train_step.py --quick    # CI smoke run, < 30 s

Writes `benchmarks/results/train_step.json` (or `--out`) and prints the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from matta_core.evaluation.cost import (
    LatencyStats,
    ThroughputStats,
    analytic_flops_per_example,
    param_count,
    time_calls,
)
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.evaluate import model_inputs, speed_rows, width_name
from matta_core.families.classifier.extract import extract
from matta_core.families.classifier.loss import matta_loss, supervised_loss
from matta_core.families.classifier.model import NestedClassifier
from matta_core.features import FeatureBatch, HashedNgramFeaturizer, SparseFeatures, inverse_document_frequency
from matta_core.loss_config import LossConfig
from matta_core.nested import Widths, sample_widths
from matta_core.training.optim import SplitOptimizer, make_model_optimizer

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "banking77"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "train_step.json"
TARGET_RATIO = 1.35
PHASES = ("forward_ms", "backward_ms", "optimizer_ms")


@dataclass(frozen=True)
class Settings:
    """Sizes of one run; `--quick` shrinks every loop but keeps the default model."""

    max_texts: int | None
    train_warmup: int
    train_rounds: int
    serve_warmup: int
    serve_rounds: int
    latency_examples: int
    throughput_repeats: int


FULL = Settings(
    max_texts=None,
    train_warmup=20,
    train_rounds=600,
    serve_warmup=20,
    serve_rounds=10,
    latency_examples=200,
    throughput_repeats=20,
)
QUICK = Settings(
    max_texts=1024,
    train_warmup=3,
    train_rounds=10,
    serve_warmup=3,
    serve_rounds=2,
    latency_examples=20,
    throughput_repeats=2,
)


def load_data(data_dir: Path, max_texts: int | None, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Training texts, label indices and class names from `train.csv` (text, category) [+ `categories.json`]."""
    path = data_dir / "train.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass --data-dir with a train.csv of (text, category) rows")
    frame = pd.read_csv(path)
    missing = {"text", "category"} - set(frame.columns)
    if missing:
        raise SystemExit(f"{path}: missing column(s) {sorted(missing)}; found {list(frame.columns)}")
    categories_path = data_dir / "categories.json"
    categories = (
        json.loads(categories_path.read_text()) if categories_path.is_file() else sorted(frame["category"].unique())
    )
    index = {name: i for i, name in enumerate(categories)}
    unknown = sorted(set(frame["category"]) - set(index))
    if unknown:
        raise SystemExit(f"{path}: categories {unknown[:5]} are not in {categories_path}")
    if max_texts is not None and len(frame) > max_texts:
        frame = frame.sample(n=max_texts, random_state=seed)
    labels = frame["category"].map(index).to_numpy(dtype=np.int64)
    return frame["text"].astype(str).tolist(), labels, list(categories)


def build_model(config: ClassifierConfig, features: SparseFeatures, seed: int) -> NestedClassifier:
    torch.manual_seed(seed)
    model = NestedClassifier(config)
    model.set_idf(torch.from_numpy(inverse_document_frequency(features, config.features.num_buckets)))
    return model


# ---------------------------------------------------------------------------------------------- part 1: training


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter_ns()
    result = fn()
    return result, (time.perf_counter_ns() - start) / 1e6


def train_step(
    model: NestedClassifier,
    optimizer: torch.optim.Optimizer | SplitOptimizer,
    batch: FeatureBatch,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    loss_config: LossConfig,
    joint: bool,
    sampled: Sequence[Widths],
) -> dict[str, float]:
    """One optimisation step; returns milliseconds per phase. `joint=False` is the TA-only step."""
    config = model.config

    def forward() -> torch.Tensor:
        hidden = model.embed(batch)  # once per step, shared by every width
        ta_logits = model.head_forward(hidden, config.ta_widths)
        if not joint:
            return supervised_loss(ta_logits, teacher, labels, loss_config)
        student_logits = model.head_forward(hidden, config.student_widths)
        sampled_logits = [model.head_forward(hidden, widths) for widths in sampled]
        return matta_loss(
            ta_logits, student_logits, teacher, labels, loss_config, progress=0.5, sampled_logits=sampled_logits
        ).total

    def step() -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    loss, forward_ms = _timed(forward)
    _, backward_ms = _timed(loss.backward)
    _, optimizer_ms = _timed(step)
    return {"forward_ms": forward_ms, "backward_ms": backward_ms, "optimizer_ms": optimizer_ms}


def paired_ratio(numerator: list[dict[str, float]], denominator: list[dict[str, float]]) -> float:
    """Median over rounds of step time ratios (round i of one arm against round i of the other)."""
    return float(np.median([sum(a.values()) / sum(b.values()) for a, b in zip(numerator, denominator, strict=True)]))


def bench_train_step(
    config: ClassifierConfig,
    features: SparseFeatures,
    labels: np.ndarray,
    settings: Settings,
    batch_size: int,
    sandwich_k: int,
    seed: int,
) -> dict[str, Any]:
    """Interleaved TA-only vs joint (k sampled widths) vs joint (k=0) steps; medians per arm and phase."""
    model = build_model(config, features, seed).train()
    # The trainer's optimizer: SparseAdam for the sparse-gradient embedding table, AdamW for the MLP.
    optimizer = make_model_optimizer("adamw", model, lr=1e-2)
    loss_config = LossConfig()
    generator = torch.Generator().manual_seed(seed)
    teacher_all = 3.0 * torch.randn(len(features), config.num_classes, generator=generator)
    labels_all = torch.tensor(labels)  # a copy: pandas may hand back a read-only array
    arms = {"ta": (False, 0), "joint": (True, sandwich_k), "joint_k0": (True, 0)}
    samples: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    order = list(arms)
    for round_index in range(settings.train_warmup + settings.train_rounds):
        rows = torch.randint(len(features), (batch_size,), generator=generator)
        batch, teacher, batch_labels = features.batch(rows), teacher_all[rows], labels_all[rows]
        # The sampled widths are drawn once per round, so every arm that uses them runs the same sub-models.
        sampled = [sample_widths(config.width_slots(), generator) for _ in range(sandwich_k)]
        order = order[1:] + order[:1]
        for arm in order:
            joint, k = arms[arm]
            phases = train_step(model, optimizer, batch, teacher, batch_labels, loss_config, joint, sampled[:k])
            if round_index >= settings.train_warmup:
                samples[arm].append(phases)

    def summary(arm: str) -> dict[str, float]:
        steps = samples[arm]
        out = {phase: float(np.median([s[phase] for s in steps])) for phase in PHASES}
        totals = [sum(s.values()) for s in steps]
        compute = [s["forward_ms"] + s["backward_ms"] for s in steps]
        out.update(
            step_ms=float(np.median(totals)),
            step_p25_ms=float(np.percentile(totals, 25)),
            step_p75_ms=float(np.percentile(totals, 75)),
            forward_backward_ms=float(np.median(compute)),
        )
        return out

    result = {arm: summary(arm) for arm in arms}
    ta = result["ta"]
    return {
        "config": config.to_dict(),
        "batch_size": batch_size,
        "sandwich_k": sandwich_k,
        "optimizer": f"make_model_optimizer('adamw'): {type(optimizer).__name__}",
        "teacher": "random fixed logits: 3 * N(0, 1), seeded (step cost does not depend on their values)",
        "measured_rounds": settings.train_rounds,
        "warmup_rounds": settings.train_warmup,
        "arms_ms": result,
        "joint_over_ta_step_ratio": result["joint"]["step_ms"] / ta["step_ms"],
        # Median of the per-round ratios: each round's arms ran back to back on the same batch, so a burst of load
        # from other processes mostly cancels out of this one.
        "joint_over_ta_step_ratio_paired": paired_ratio(samples["joint"], samples["ta"]),
        "joint_k0_over_ta_step_ratio": result["joint_k0"]["step_ms"] / ta["step_ms"],
        # Without the optimizer, whose cost is (nearly) the same for every arm: all arms update the same parameters.
        "joint_over_ta_forward_backward_ratio": result["joint"]["forward_backward_ms"] / ta["forward_backward_ms"],
        "joint_k0_over_ta_forward_backward_ratio": (
            result["joint_k0"]["forward_backward_ms"] / ta["forward_backward_ms"]
        ),
        "target_ratio": TARGET_RATIO,
    }


# ----------------------------------------------------------------------------------------------- part 2: serving


def fixed_overhead(flops: Sequence[float], times: Sequence[float]) -> dict[str, float]:
    """Least-squares `time = overhead + slope * flops`; the overhead is what no width reduction can remove."""
    slope, intercept = np.polyfit(np.asarray(flops, dtype=float), np.asarray(times, dtype=float), 1)
    return {"intercept": float(intercept), "per_mflop": float(slope * 1e6)}


def bench_serving(
    name: str,
    config: ClassifierConfig,
    features: SparseFeatures,
    widths_list: Sequence[Widths],
    settings: Settings,
    seed: int,
) -> dict[str, Any]:
    """Params, FLOPs, batch-1 latency and batch-256 throughput of each extracted width, interleaved by round."""
    nested = build_model(config, features, seed).eval()
    models = {width_name(nested, w): (w, extract(nested, w)) for w in widths_list}
    rows = speed_rows(len(features), settings.latency_examples, seed)
    single = [model_inputs(features.batch(rows[i : i + 1])) for i in range(len(rows))]
    big = model_inputs(features.batch(speed_rows(len(features), 256, seed)))
    avg_active = float(features.indices.numel()) / len(features)
    for _, model in models.values():  # warm-up: lazy allocations and cold caches, paid once by a server
        time_calls(model, single[: settings.serve_warmup] + [big] * 2)
    latency_ns: dict[str, list[int]] = {label: [] for label in models}
    batch_ns: dict[str, list[int]] = {label: [] for label in models}
    order = list(models)
    for _ in range(settings.serve_rounds):
        order = order[1:] + order[:1]
        for label in order:
            latency_ns[label] += time_calls(models[label][1], single)
            batch_ns[label] += time_calls(models[label][1], [big] * settings.throughput_repeats)

    records = []
    for label, (widths, model) in models.items():
        params = param_count(model)
        latency = LatencyStats.from_samples(latency_ns[label])
        throughput = ThroughputStats.from_samples(batch_ns[label], batch_size=256)
        records.append(
            {
                "name": label,
                "widths": list(widths),
                "params": params.total,
                "embedding_params": params.embedding,
                "dense_params": params.dense,
                "flops_per_example": analytic_flops_per_example(
                    widths, config.embed_dim, config.num_dense_features, config.num_classes, avg_active
                ),
                "latency_p50_ms": latency.p50_ms,
                "latency_p95_ms": latency.p95_ms,
                "latency_mean_ms": latency.mean_ms,
                "latency_calls": latency.calls,
                "throughput_examples_per_s": throughput.examples_per_s,
                "throughput_batch_ms": throughput.median_batch_ms,
            }
        )
    ta = next(r for r in records if r["name"].startswith("ta-"))
    for r in records:
        r["param_ratio_vs_ta"] = r["params"] / ta["params"]
        r["dense_param_ratio_vs_ta"] = r["dense_params"] / ta["dense_params"]
        r["flops_ratio_vs_ta"] = r["flops_per_example"] / ta["flops_per_example"]
        r["latency_ratio_vs_ta"] = r["latency_p50_ms"] / ta["latency_p50_ms"]
        r["throughput_ratio_vs_ta"] = r["throughput_examples_per_s"] / ta["throughput_examples_per_s"]
    flops = [r["flops_per_example"] for r in records]
    latency_fit = fixed_overhead(flops, [r["latency_p50_ms"] for r in records])
    batch_fit = fixed_overhead(flops, [1e3 / r["throughput_examples_per_s"] for r in records])  # ms per example
    return {
        "name": name,
        "config": config.to_dict(),
        "avg_active_ngrams": avg_active,
        "latency_examples": len(single),
        "widths": records,
        # Share of the TA's time that a linear fit in FLOPs puts at zero FLOPs: what shrinking widths cannot save.
        "latency_fixed_overhead_ms": latency_fit["intercept"],
        "latency_fixed_share_of_ta": latency_fit["intercept"] / ta["latency_p50_ms"],
        "batch256_fixed_overhead_ms_per_example": batch_fit["intercept"],
        "batch256_fixed_share_of_ta": batch_fit["intercept"] / (1e3 / ta["throughput_examples_per_s"]),
    }


# ------------------------------------------------------------------------------------------------------- driver


def machine_info() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        # Other processes on the machine skew timings; the load average says how busy it was.
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def print_report(report: dict[str, Any]) -> None:
    step = report["train_step"]
    arms = step["arms_ms"]
    print(f"train step, batch {step['batch_size']}, median ms (forward / backward / optimizer):")
    for arm, values in arms.items():
        print(
            f"  {arm:9s} {values['step_ms']:8.1f}  ({values['forward_ms']:.1f} / {values['backward_ms']:.1f} / "
            f"{values['optimizer_ms']:.1f})"
        )
    print(
        f"  joint_over_ta_step_ratio     {step['joint_over_ta_step_ratio']:.3f} (k={step['sandwich_k']}, "
        f"target <= {TARGET_RATIO})"
    )
    print(
        f"  joint_over_ta_step_ratio_paired {step['joint_over_ta_step_ratio_paired']:.3f} (median of per-round ratios)"
    )
    print(f"  joint_k0_over_ta_step_ratio  {step['joint_k0_over_ta_step_ratio']:.3f}")
    print(
        f"  forward+backward only: joint {step['joint_over_ta_forward_backward_ratio']:.3f}, "
        f"joint_k0 {step['joint_k0_over_ta_forward_backward_ratio']:.3f}"
    )
    for serving in report["serving"]:
        print(f"\nserving, {serving['name']} (avg {serving['avg_active_ngrams']:.1f} active n-grams):")
        print(
            f"  {'model':22s} {'params':>7s} {'dense':>7s} {'flops':>7s} {'lat p50':>8s} {'lat':>6s} "
            f"{'thru':>6s}   (ratios vs TA; lat p50 in ms)"
        )
        for r in serving["widths"]:
            print(
                f"  {r['name']:22s} {r['param_ratio_vs_ta']:7.3f} {r['dense_param_ratio_vs_ta']:7.3f} "
                f"{r['flops_ratio_vs_ta']:7.3f} {r['latency_p50_ms']:8.3f} {r['latency_ratio_vs_ta']:6.3f} "
                f"{r['throughput_ratio_vs_ta']:6.2f}"
            )
        batch_1, batch_256 = serving["latency_fixed_share_of_ta"], serving["batch256_fixed_share_of_ta"]
        print(
            "  share of the TA's time that does not scale with FLOPs (intercept of a linear fit): "
            f"batch 1 {batch_1:.0%}, batch 256 {batch_256:.0%}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder with train.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: few texts, few rounds (< 30 s)")
    parser.add_argument("--sandwich-k", type=int, default=2, help="sampled widths per joint step")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.sandwich_k < 0 or args.batch_size < 1:
        parser.error("--sandwich-k must be >= 0 and --batch-size >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    texts, labels, categories = load_data(args.data_dir, settings.max_texts, args.seed)
    one_layer = ClassifierConfig(num_classes=len(categories))
    # A 2-layer config, so that Mix'n'Match sub-models (a different width per layer) are measured too.
    two_layer = ClassifierConfig(num_classes=len(categories), hidden_widths=(1024, 1024), student_widths=(64, 64))
    features = HashedNgramFeaturizer(one_layer.features).transform(texts)

    report: dict[str, Any] = {
        "machine": machine_info(),
        "args": {
            "quick": args.quick,
            "data_dir": str(args.data_dir),
            "num_texts": len(texts),
            "num_classes": len(categories),
            "seed": args.seed,
        },
        "train_step": bench_train_step(
            one_layer, features, labels, settings, args.batch_size, args.sandwich_k, args.seed
        ),
        "serving": [
            bench_serving(
                "1 layer (default config)",
                one_layer,
                features,
                [(1024,), (512,), (256,), (128,), (64,), (32,)],
                settings,
                args.seed,
            ),
            bench_serving(
                "2 layers",
                two_layer,
                features,
                [(1024, 1024), (512, 512), (256, 256), (128, 128), (64, 64), (32, 32), (1024, 64), (64, 1024)],
                settings,
                args.seed,
            ),
        ],
    }
    report["wall_s"] = time.perf_counter() - started
    report["machine"]["load_avg_1m_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nwrote {args.out} in {report['wall_s']:.0f} s")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
