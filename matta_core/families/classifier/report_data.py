"""The report header's data notes: what was prepared, what was quarantined (per reason, and where it is listed),
and every warning of the prepare and train steps, so that a reader of the numbers below sees what they rest on."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from matta_core.artifacts.layout import TRAIN_RESULT
from matta_core.data.manifest import MANIFEST_FILE, Manifest
from matta_core.data.summary import quarantine_counts, quarantine_line, summary_lines


def data_notes(prepared_dir: str | None, trained_dir: str | None) -> dict[str, Any]:
    """``{"prepared", "quarantine", "quarantine_counts", "warnings"}`` from the prepared folder's manifest and
    the train step's result; the parts whose folder is not given (or holds no such file) are left out."""
    notes: dict[str, Any] = {}
    warnings: list[dict[str, Any]] = []
    manifest_path = None if prepared_dir is None else Path(prepared_dir) / MANIFEST_FILE
    if manifest_path is not None and manifest_path.is_file():
        manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"))
        notes["prepared"] = summary_lines(manifest, str(prepared_dir))[0]
        notes["quarantine"] = quarantine_line(manifest, str(prepared_dir))
        notes["quarantine_counts"] = quarantine_counts(manifest)
        warnings += manifest.warnings
    result_path = None if trained_dir is None else Path(trained_dir) / TRAIN_RESULT
    if result_path is not None and result_path.is_file():
        warnings += json.loads(result_path.read_text()).get("warnings", [])
    if notes or warnings:
        notes["warnings"] = warnings
    return notes


def notes_markdown(notes: dict[str, Any]) -> str:
    """The notes as Markdown paragraphs (empty when there are none)."""
    parts = []
    if "prepared" in notes:
        parts.append(f"**Data**: {notes['prepared']}; {notes['quarantine']}.\n\n")
    if notes.get("warnings"):
        items = "".join(f"- {w['message']}\n" for w in notes["warnings"])
        parts.append(f"**Warnings** ({len(notes['warnings'])}):\n\n{items}\n")
    return "".join(parts)


def notes_html(notes: dict[str, Any]) -> str:
    """The notes as HTML (empty when there are none)."""
    parts = []
    if "prepared" in notes:
        parts.append(f"<p><b>Data</b>: {html.escape(notes['prepared'])}; {html.escape(notes['quarantine'])}.</p>")
    if notes.get("warnings"):
        items = "".join(f"<li>{html.escape(w['message'])}</li>" for w in notes["warnings"])
        parts.append(f"<p><b>Warnings</b> ({len(notes['warnings'])}):</p><ul>{items}</ul>")
    return "".join(parts)
