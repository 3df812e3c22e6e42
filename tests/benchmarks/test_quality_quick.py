"""`benchmarks/quality.py --quick` runs end to end as a script and writes results of the documented shape.

The numbers of a quick run (a data subset, 3 epochs) say nothing about the method; only the structure is checked:
every arm and width is scored as served, has its serving cost measured, baselines and MatTA share one shape per
width, the equal-compute run trains the budget it was planned, and every goal is judged.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.mirror import MIRROR_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "quality.py"
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))  # benchmarks/ is not a package
import quality  # noqa: E402

RUN_KEYS = {"arm", "width", "params", "dense_params", "seed", "test_accuracy", "val_accuracy", "train_seconds",
            "train_flops", "run_id", "regime", "teacher", "optimizer", "test_macro_f1", "test_ece",
            "test_ece_uncalibrated", "temperature", "test_accuracy_float32", "embed_dims", "is_ta", "served_dir",
            "steps", "epochs"}
ARMS = {"ce_only", "kd", "matta", "matta_separate", "ce_only+shampoo", "matta+shampoo", "matta_equal_compute"}
SINGLE_RUN = {"matta", "matta+shampoo", "matta_equal_compute"}
GOALS = {"matta_beats_ce_beyond_1std_every_width", "matta_within_0.3pt_of_kd_at_a_third_of_the_time",
         "largest_student_closes_80pct_of_teacher_gap", "matta_beats_tfidf_at_equal_or_higher_throughput",
         "regime_where_matta_beats_kd_beyond_1std", "smallest_class_under_2mb_beats_tfidf_at_2x_throughput",
         "cost_scales_narrowest_3x_throughput_and_under_1_20_bytes",
         "matta_within_0.1pt_of_kd_every_width_equal_budget", "matta_ahead_of_kd_every_width_equal_compute",
         "matta_beats_kd_beyond_1sd_two_narrowest_widths", "ece_at_most_0.03_every_width"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quality")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--mirror-dir", str(MIRROR_DIR)],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def report(results: Path) -> dict[str, Any]:
    return json.loads((results / "quality_banking77.json").read_text())


@pytest.mark.slow
def test_quick_run_writes_json_markdown_and_chart(results: Path, report: dict[str, Any]) -> None:
    runs = report["runs"]
    assert runs and all(set(r) >= RUN_KEYS for r in runs)
    assert {r["arm"] for r in runs} == ARMS
    seeds = set(report["settings"]["seeds"])
    assert len(seeds) >= 2 and {r["seed"] for r in runs} == seeds
    for r in runs:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["train_seconds"] > 0 and r["params"] > r["dense_params"] > 0
        assert 0.0 <= r["test_accuracy_float32"] <= 1.0 and 0.0 <= r["test_macro_f1"] <= 1.0
        assert 0.0 <= r["test_ece"] <= 1.0 and 0.0 <= r["test_ece_uncalibrated"] <= 1.0 and r["temperature"] > 0
    regime = report["settings"]["regimes"][0]
    widths, ta = set(regime["widths"]), regime["ta_width"]
    assert regime["student_embed_dim"] is not None  # the quick run exercises the nested embedding
    # One single run yields every width and its TA: its records share one run_id and one training time.
    for seed in seeds:
        for arm in SINGLE_RUN:
            single = [r for r in runs if r["arm"] == arm and r["seed"] == seed]
            assert {r["width"] for r in single} == widths | {ta}
            assert {r["width"] for r in single if r["is_ta"]} == {ta}
            assert len({r["run_id"] for r in single}) == 1 and len({r["train_seconds"] for r in single}) == 1
        kd = [r for r in runs if r["arm"] == "kd" and r["seed"] == seed]
        assert len({r["run_id"] for r in kd}) == len(widths)  # per-width arms: one run per width
    # Equal budget: every run but the equal-compute one took the same steps at the same batch size.
    assert len({(r["steps"], r["batch_size"]) for r in runs if r["arm"] != "matta_equal_compute"}) == 1

    summary = {(row["arm"], row["width"]): row for row in report["summary"] if row["regime"] == "main"}
    assert set(summary) == {(arm, w) for arm in ARMS for w in widths} | {(arm, ta) for arm in SINGLE_RUN}
    row = summary[("matta", max(widths))]
    for key in ("test_accuracy_mean", "test_accuracy_std", "rel_error_reduction_vs_ce_only",
                "rel_error_reduction_vs_kd", "teacher_gap_closed", "n", "test_macro_f1_mean", "test_ece_mean",
                "test_ece_uncalibrated_mean", "test_accuracy_float32_mean"):
        assert key in row, key
    assert {"minilm", "ensemble", "tfidf_lr", "stronger_on_validation"} <= set(report["teachers"])
    assert set(report["arm_costs"]["main"]) == ARMS
    assert set(report["super_additivity"]) == {str(w) for w in widths}
    assert set(report["goals"]) == GOALS and all(isinstance(g["met"], bool) for g in report["goals"].values())

    markdown = (results / "quality_banking77.md").read_text()
    assert "| regime | arm | width |" in markdown and "matta+shampoo" in markdown
    assert "| width | arm | embed dims | on disk MB |" in markdown and "| goal | met | key figures |" in markdown
    assert "Equal compute (main)" in markdown and f"{ta} (TA)" in markdown
    assert (results / "quality_banking77.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # The served models were saved (under the work dir) for the serving pass, and removed after it.
    assert report["settings"]["served_models_dir"] is None
    assert not any(Path(m["dir"]).exists() for m in report["serving"]["models"].values())


@pytest.mark.slow
def test_every_row_has_its_served_models_cost_measured_side_by_side(report: dict[str, Any]) -> None:
    serving = report["serving"]
    assert serving["threads"] == 1 and serving["batch_size"] == 256
    assert serving["tfidf_lr"]["text_to_label_examples_per_s"] > 0
    # One measurement per saved model; matta_separate at the Student reuses the single run's model.
    assert len(serving["models"]) == len(report["summary"]) - 1
    for row in report["summary"]:
        assert row["bytes_on_disk"] > 0 and row["resident_bytes"] > 0, row
        assert row["latency_p95_ms"] >= row["latency_p50_ms"] > 0, row
        assert row["examples_per_s_batch256"] > 0 and row["text_to_label_examples_per_s"] > 0, row
    # The embedding nests, so a narrower width ships a smaller table: a size, not a quality number.
    matta = {r["width"]: r for r in report["summary"] if r["arm"] == "matta"}
    ta = report["settings"]["regimes"][0]["ta_width"]
    assert matta[min(matta)]["bytes_on_disk"] < matta[ta]["bytes_on_disk"]
    assert matta[min(matta)]["embed_dims"] < matta[ta]["embed_dims"]


@pytest.mark.slow
def test_baselines_and_matta_have_the_same_shape_at_every_width(report: dict[str, Any]) -> None:
    # matta_separate is left out on purpose: each of its runs has its own Student, which reads student_embed_dim.
    shapes: dict[int, set[tuple[int, int, int]]] = {}
    for row in report["summary"]:
        if row["arm"] != "matta_separate" and not row["is_ta"]:
            shapes.setdefault(row["width"], set()).add((row["embed_dims"], row["params"], row["dense_params"]))
    assert shapes and all(len(s) == 1 for s in shapes.values()), shapes


@pytest.mark.slow
def test_equal_compute_run_trains_the_planned_budget(report: dict[str, Any]) -> None:
    plan = report["equal_compute"]["main"]
    runs = report["runs"]
    matta_steps = {r["steps"] for r in runs if r["arm"] == "matta"}
    equal_steps = {r["steps"] for r in runs if r["arm"] == "matta_equal_compute"}
    assert matta_steps == {plan["steps"]} and equal_steps == {plan["equal_compute_steps"]}
    assert plan["basis"] == "train_flops" and plan["multiplier"] > 0
    assert math.isclose(plan["multiplier"], plan["kd_train_flops_all_widths"] / plan["matta_train_flops"])
    # More steps than `matta` when all the kd runs cost more analytic FLOPs than one MatTA run, fewer otherwise.
    assert (plan["equal_compute_steps"] > plan["steps"]) == (plan["multiplier"] > 1)
    # Its FLOPs match the kd runs' up to rounding to whole steps.
    kd_flops = report["arm_costs"]["main"]["kd"]["train_flops_all_widths"]
    assert math.isclose(kd_flops, plan["kd_train_flops_all_widths"])
    assert abs(plan["matta_equal_compute_train_flops"] - kd_flops) <= 2 * kd_flops / plan["equal_compute_steps"]
    assert report["equal_compute"]["main"]["per_width"]


def test_baseline_config_cuts_the_single_runs_width_for_the_nested_regime() -> None:
    from matta_core.families.classifier.extract import expected_param_count

    regime = next(r for r in quality.FULL.regimes if r.name == "nested")
    assert (regime.student_embed_dim, regime.min_embed_dim, regime.ta_width) == (32, 16, 1024)
    assert "matta_equal_compute" in regime.arms and "kd" in regime.arms
    nested = quality.model_config(regime, quality.single_run_student(regime))
    for width in regime.widths:
        baseline = quality.baseline_config(regime, width)
        assert baseline.embed_dim == nested.embed_dim_for((width,)) and baseline.hidden_widths == (width,)
        assert expected_param_count(baseline, (width,)) == expected_param_count(nested, (width,))
    # Without nesting a baseline is the model it always was.
    main = quality.FULL.regimes[0]
    assert quality.baseline_config(main, 64) == quality.model_config(main, 64).sub_config((64,))


def test_jobs_plan_equal_compute_and_save_only_the_first_seeds_models(tmp_path: Path) -> None:
    settings = quality.QUICK
    regime = settings.regimes[0]
    plan = quality.equal_compute_plan(regime, settings.epochs, ["book a flight to paris", "card declined"] * 50)
    assert math.isclose(plan["equal_compute_epochs"], settings.epochs * plan["multiplier"])
    jobs = quality.make_jobs(settings, {}, {regime.name: 2.0}, tmp_path)
    assert len({j.run_id for j in jobs}) == len(jobs)
    equal = [j for j in jobs if j.arm == "matta_equal_compute"]
    assert equal and all(j.epochs == 2.0 * settings.epochs for j in equal) and jobs[0] in equal  # longest first
    assert {j.seed for j in jobs if j.serve_dir} == {settings.seeds[0]}
    assert all(j.extract_ta for j in jobs)
    with pytest.raises(ValueError, match="multiplier"):
        quality.make_jobs(settings, {})


def test_cli_command_finds_and_describes_the_benchmark() -> None:
    from typer.testing import CliRunner

    from matta_core.cli import app
    from matta_core.cli.benchmark_cmds import load_benchmark

    result = CliRunner().invoke(app, ["benchmark", "quality", "--help"])
    assert result.exit_code == 0, result.output
    assert "--quick" in result.output and "--mirror-dir" in result.output
    assert callable(load_benchmark("quality").main)
