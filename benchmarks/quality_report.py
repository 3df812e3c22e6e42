"""The Markdown tables and the chart of `benchmarks/quality.py`'s report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from quality_arms import ARM_ORDER


def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}%}"


def num(value: float | None, fmt: str) -> str:
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
        mb = [num(None if r.get(k) is None else r[k] / 1e6, ".2f") for k in ("bytes_on_disk", "resident_bytes")]
        latency = ("–" if r.get("latency_p50_ms") is None
                   else f"{r['latency_p50_ms']:.3f} / {r['latency_p95_ms']:.3f}")
        lines.append(
            f"| {_width_label(r)} | {r['arm']} | {r.get('embed_dims') or '–'} | {mb[0]} | {mb[1]} | {latency} | "
            f"{num(r.get('examples_per_s_batch256'), ',.0f')} | {num(r.get('text_to_label_examples_per_s'), ',.0f')} "
            f"| {r['test_accuracy_mean']:.2%} ± {r['test_accuracy_std']:.2%} | {pct(r.get('test_macro_f1_mean'))} | "
            f"{num(r.get('test_ece_uncalibrated_mean'), '.3f')} → {num(r.get('test_ece_mean'), '.3f')} | "
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
            lines.append(f"| {width} | {pct(e.get('kd'))} | {pct(e.get('matta'))} | "
                         f"{num(e.get('matta_minus_kd'), '+.2%')} | {pct(e.get('matta_equal_compute'))} | "
                         f"{num(e.get('matta_equal_compute_minus_kd'), '+.2%')} |")

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
