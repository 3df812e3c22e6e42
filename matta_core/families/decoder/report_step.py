"""Step 6 for ``task: causal_lm``: every width against the Teacher and the baselines: table, Pareto front, chart.

The same files as the classifier's report (`matta_core.families.classifier.report_step`): report.md, report.html (chart
inlined), report.json and pareto.png, with the LM's measures: test perplexity (lower is better) and last-word cloze
accuracy for quality, parameters and FLOPs per token for cost. The Pareto front is perplexity against parameters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matta_core.artifacts.layout import PARETO_PNG, REPORT_HTML, REPORT_JSON, REPORT_MD, TEACHER_INFO
from matta_core.artifacts.report_views import html_report, markdown_table
from matta_core.evaluation.pareto import pareto_front
from matta_core.evaluation.plots import pareto_chart

COLUMNS = [
    ("name", "model", "{}"),
    ("arm", "arm", "{}"),
    ("params", "params", "{:,}"),
    ("flops_per_token", "FLOPs/token", "{:,.0f}"),
    ("test_perplexity", "test perplexity", "{:,.2f}"),
    ("cloze_accuracy", "cloze accuracy", "{:.2%}"),
    ("latency_p50_ms", "p50 ms (batch 8)", "{:.3f}"),
    ("tokens_per_second", "tokens/s", "{:,.0f}"),
]
TITLE = "MatTA language-model report"


def lm_report_step(evaluations: Sequence[dict[str, Any]], teacher_dir: str | None, out_dir: str) -> dict[str, Any]:
    """Write report.md, report.html, report.json and pareto.png into `out_dir`; returns the report (report.json)."""
    if not evaluations:
        raise ValueError("the report needs at least one evaluation")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = sorted((dict(r) for r in evaluations), key=lambda r: (r["arm"] != "matta", -r["params"]))
    matta = [r for r in records if r["arm"] == "matta"]
    front = {r["name"] for r in pareto_front(matta, "params", "test_perplexity", higher_is_better=False)}
    for record in records:
        record["on_pareto_front"] = record["name"] in front
    teacher = _teacher_summary(teacher_dir)
    references = {"Teacher": teacher["test_perplexity"]} if teacher.get("test_perplexity") is not None else {}
    references.update({r["name"]: r["test_perplexity"] for r in records if r["arm"] != "matta"})
    pareto_chart(
        matta or records,
        out / PARETO_PNG,
        cost="params",
        quality="test_perplexity",
        reference_lines=references,
        title="MatTA widths: test perplexity vs parameters",
        higher_is_better=False,
        log_quality=True,
    )
    vocab = next((r.get("vocab_size") for r in records if r.get("vocab_size")), None)
    report = {"task": "causal_lm", "models": records, "teacher": teacher, "pareto_front": sorted(front),
              "uniform_perplexity": vocab}
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    teacher_line = _teacher_line(teacher)
    uniform = f"A uniform guess over the {vocab:,}-token vocabulary has perplexity {vocab:,}.\n\n" if vocab else ""
    # The Teacher closes the table as a reference row (it is not a candidate, so not on the Pareto front).
    table = [*records, {**teacher, "name": "Teacher", "arm": "teacher"}] if teacher.get("test_perplexity") else records
    markdown = (
        f"# {TITLE}\n\n"
        + teacher_line
        + uniform
        + markdown_table(table, COLUMNS)
        + "\n\n`*` = on the Pareto front of the MatTA widths (no other width has both fewer parameters and a lower "
        "perplexity). Perplexity and cloze accuracy are on the test split, on the ids the Teacher read.\n\n"
        + f"![perplexity vs parameters]({PARETO_PNG})\n"
    )
    (out / REPORT_MD).write_text(markdown)
    (out / REPORT_HTML).write_text(html_report(TITLE, teacher_line + uniform, table, COLUMNS, out / PARETO_PNG))
    return report


def _teacher_summary(teacher_dir: str | None) -> dict[str, Any]:
    if teacher_dir is None or not (Path(teacher_dir) / TEACHER_INFO).is_file():
        return {}
    info = json.loads((Path(teacher_dir) / TEACHER_INFO).read_text())
    evaluation = info.get("evaluation", {})
    spec = info.get("teacher_spec", {})
    return {
        "kind": spec.get("kind"),
        "name": spec.get("name") or spec.get("gguf_file") or spec.get("model_path"),
        "fingerprint": info.get("fingerprint"),
        "cache_key": info.get("cache_key"),
        **{key: evaluation.get(key) for key in ("test_perplexity", "cloze_accuracy", "params", "flops_per_token")},
    }


def _teacher_line(teacher: dict[str, Any]) -> str:
    if teacher.get("test_perplexity") is None:
        return ""
    cloze = teacher.get("cloze_accuracy")
    parts = [f"test perplexity {teacher['test_perplexity']:,.2f}"]
    if cloze is not None:
        parts.append(f"cloze accuracy {cloze:.2%}")
    if teacher.get("params") is not None:
        parts.append(f"{teacher['params']:,} params")
    return f"Teacher ({teacher.get('name') or teacher.get('kind', '?')}): {', '.join(parts)}\n\n"
