"""Step 6: compare every evaluated model with the Teacher and the baselines: table, Pareto front, chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matta_core.artifacts.layout import PARETO_PNG, REPORT_HTML, REPORT_JSON, REPORT_MD, TEACHER_INFO
from matta_core.artifacts.report_views import html_report, markdown_table
from matta_core.evaluation.pareto import pareto_front
from matta_core.evaluation.plots import pareto_chart
from matta_core.families.classifier.report_data import data_notes, notes_html, notes_markdown

COLUMNS = [
    ("name", "model", "{}"),
    ("arm", "arm", "{}"),
    ("params", "params", "{:,}"),
    ("dense_params", "dense params", "{:,}"),
    ("bytes_on_disk_mb", "on disk MB", "{:,.2f}"),
    ("resident_mb", "resident MB", "{:,.2f}"),
    ("flops_per_example", "FLOPs/example", "{:,.0f}"),
    ("accuracy", "accuracy", "{:.2%}"),
    ("macro_f1", "macro-F1", "{:.4f}"),
    ("ece", "ECE", "{:.4f}"),
    ("ece_uncalibrated", "ECE before calibration", "{:.4f}"),
    ("temperature", "T", "{:.3f}"),
    ("latency_p50_ms", "p50 ms (batch 1)", "{:.3f}"),
    ("latency_p95_ms", "p95 ms (batch 1)", "{:.3f}"),
    ("throughput_examples_per_s", "examples/s (batch 256)", "{:,.0f}"),
]


#: Byte keys of an evaluation record shown in MB (10^6 bytes) by the table: record key -> table key.
MB_COLUMNS = {"bytes_on_disk": "bytes_on_disk_mb", "resident_bytes": "resident_mb"}


def table_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as the table shows them: byte counts also in MB (`MB_COLUMNS`); report.json keeps bytes only."""
    return [{**r, **{mb: None if r.get(key) is None else r[key] / 1e6 for key, mb in MB_COLUMNS.items()}}
            for r in records]


def report_step(
    evaluations: Sequence[dict[str, Any]],
    teacher_dir: str | None,
    out_dir: str,
    *,
    prepared_dir: str | None = None,
    trained_dir: str | None = None,
) -> dict[str, Any]:
    """Write report.md, report.html (chart inlined), report.json and pareto.png into `out_dir`.

    With `prepared_dir` and/or `trained_dir`, the header also shows the quarantined rows per reason and every
    data and training warning (`report_data`); report.json keeps them under ``data``.
    """
    if not evaluations:
        raise ValueError("report_step needs at least one evaluation")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = sorted((dict(r) for r in evaluations), key=lambda r: (r["arm"] != "matta", -r["flops_per_example"]))
    matta = [r for r in records if r["arm"] == "matta"]
    front = {r["name"] for r in pareto_front(matta, "flops_per_example", "accuracy")} if matta else set()
    for record in records:
        record["on_pareto_front"] = record["name"] in front
    teacher = _teacher_summary(teacher_dir)
    references = {"Teacher": teacher["test_accuracy"]} if teacher.get("test_accuracy") is not None else {}
    for record in records:
        if record["arm"] != "matta":
            references[record["name"]] = record["accuracy"]
    pareto_chart(
        matta or records,
        out / PARETO_PNG,
        cost="flops_per_example",
        quality="accuracy",
        reference_lines=references,
        title="MatTA widths: test accuracy vs FLOPs per example",
    )
    notes = data_notes(prepared_dir, trained_dir)
    report = {"models": records, "teacher": teacher, "pareto_front": sorted(front), "data": notes}
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    table = markdown_table(table_rows(records), COLUMNS)
    teacher_line = (
        f"Teacher ({teacher.get('kind', '?')}): test accuracy {teacher['test_accuracy']:.2%}\n\n"
        if teacher.get("test_accuracy") is not None
        else ""
    )
    markdown = (
        "# MatTA run report\n\n"
        + notes_markdown(notes)
        + teacher_line
        + table
        + "\n\n`*` = on the Pareto front of the MatTA widths (no other width is both cheaper and more accurate). "
        + "ECE (15 bins) is that of the served probabilities, softmax(logits / T), with each model's temperature T "
        + "fitted on the validation split when it was written; before calibration, T = 1. "
        + "On disk: the saved model folder; resident: the memory loading it and serving a prediction adds to a "
        + "process (measured with the speed); MB = 10^6 bytes.\n\n"
        + f"![quality vs cost]({PARETO_PNG})\n"
    )
    (out / REPORT_MD).write_text(markdown)
    (out / REPORT_HTML).write_text(
        html_report("MatTA run report", teacher_line, table_rows(records), COLUMNS, out / PARETO_PNG,
                    header_html=notes_html(notes))
    )
    return report


def _teacher_summary(teacher_dir: str | None) -> dict[str, Any]:
    if teacher_dir is None or not (Path(teacher_dir) / TEACHER_INFO).is_file():
        return {}
    info = json.loads((Path(teacher_dir) / TEACHER_INFO).read_text())
    test = info.get("splits", {}).get("test", {})
    return {
        "kind": info.get("teacher_spec", {}).get("kind"),
        "fingerprint": info.get("fingerprint"),
        "cache_key": info.get("cache_key"),
        "test_accuracy": test.get("accuracy"),
    }
