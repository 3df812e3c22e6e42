"""How every family's report is shown: a Markdown table, one self-contained HTML page, the chart inlined.

The families' report steps (`matta_core.families.<family>.report_step`) choose the columns; these render them.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matta_core.artifacts.layout import PARETO_PNG, REPORT_MD

Columns = Sequence[tuple[str, str, str]]  # (record key, column title, format)


def markdown_with_inline_chart(report_dir: str | Path) -> str:
    """`report.md` of `report_dir` with the chart embedded as a data URI, for viewers that show one file only.

    The KFP UI renders a Markdown artifact on its own: a relative `pareto.png` link would show a broken image.
    """
    out = Path(report_dir)
    image = base64.b64encode((out / PARETO_PNG).read_bytes()).decode()
    return (out / REPORT_MD).read_text().replace(f"]({PARETO_PNG})", f"](data:image/png;base64,{image})")


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
