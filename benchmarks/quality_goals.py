"""What `benchmarks/quality.py` concludes: training cost per arm, the equal-compute comparison, the issues' goals
(each with the figures it was judged on) and super-additivity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from quality_arms import MATTA_ARMS
from quality_report import pct

# The size class of issue 15's first goal, in bytes on disk.
SMALL_CLASS_BYTES = 2_000_000


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
                                                          "summary": f"main w{top}: {pct(gap_closed, 0)}"}
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
