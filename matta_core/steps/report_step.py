"""Step 6: compare every evaluated model with the Teacher and the baselines: table, Pareto front, chart."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matta_core.evaluation.pareto import pareto_front
from matta_core.evaluation.plots import pareto_chart
from matta_core.steps.layout import PARETO_PNG, REPORT_HTML, REPORT_JSON, REPORT_MD, TEACHER_INFO
from matta_core.steps.report_data import data_notes, notes_html, notes_markdown

COLUMNS = [
    ("name", "model", "{}"),
    ("arm", "arm", "{}"),
    ("params", "params", "{:,}"),
    ("dense_params", "dense params", "{:,}"),
    ("flops_per_example", "FLOPs/example", "{:,.0f}"),
    ("accuracy", "accuracy", "{:.2%}"),
    ("macro_f1", "macro-F1", "{:.4f}"),
    ("ece", "ECE", "{:.4f}"),
    ("latency_p50_ms", "p50 ms (batch 1)", "{:.3f}"),
    ("latency_p95_ms", "p95 ms (batch 1)", "{:.3f}"),
    ("throughput_examples_per_s", "examples/s (batch 256)", "{:,.0f}"),
]


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
    table = markdown_table(records, COLUMNS)
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
        + "\n\n`*` = on the Pareto front of the MatTA widths (no other width is both cheaper and more accurate).\n\n"
        + f"![quality vs cost]({PARETO_PNG})\n"
    )
    (out / REPORT_MD).write_text(markdown)
    (out / REPORT_HTML).write_text(
        html_report("MatTA run report", teacher_line, records, COLUMNS, out / PARETO_PNG, header_html=notes_html(notes))
    )
    return report


def markdown_with_inline_chart(report_dir: str | Path) -> str:
    """`report.md` of `report_dir` with the chart embedded as a data URI, for viewers that show one file only.

    The KFP UI renders a Markdown artifact on its own: a relative `pareto.png` link would show a broken image.
    """
    out = Path(report_dir)
    image = base64.b64encode((out / PARETO_PNG).read_bytes()).decode()
    return (out / REPORT_MD).read_text().replace(f"]({PARETO_PNG})", f"](data:image/png;base64,{image})")


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


Columns = Sequence[tuple[str, str, str]]  # (record key, column title, format)


def _cell(record: dict[str, Any], key: str, fmt: str) -> str:
    value = record.get(key)
    if value is None:
        return "–"
    text = fmt.format(value)
    return f"{text} *" if key == "name" and record.get("on_pareto_front") else text


def markdown_table(records: Sequence[dict[str, Any]], columns: Columns) -> str:
    """The records as a Markdown table; ``–`` where a value was not measured, ``*`` after a Pareto-front name."""
    header = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    rows = ["| " + " | ".join(_cell(r, key, fmt) for key, _, fmt in columns) + " |" for r in records]
    return "\n".join([header, rule, *rows])


def html_report(
    title: str, intro: str, records: Sequence[dict[str, Any]], columns: Columns, png: Path, *, header_html: str = ""
) -> str:
    """One self-contained HTML page: title, `header_html` (already escaped), intro paragraph, the table, and the
    chart inlined as a data URI."""
    head = "".join(f"<th>{html.escape(name)}</th>" for _, name, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r, key, fmt))}</td>" for key, _, fmt in columns) + "</tr>"
        for r in records
    )
    image = base64.b64encode(png.read_bytes()).decode()
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{header_html}<p>{html.escape(intro.strip())}</p>"
        f"<table border='1' cellpadding='4'><tr>{head}</tr>{body}</table>"
        f"<p><img alt='quality vs cost' src='data:image/png;base64,{image}'></p></body></html>\n"
    )
