"""What a finished preparation tells its user: rows per split, quarantined rows per reason and where they are
listed, and every warning. One wording for the console, the report and MLflow."""

from __future__ import annotations

from typing import Any

from matta_core import storage
from matta_core.data.manifest import Manifest


def quarantine_counts(manifest: Manifest) -> dict[str, int]:
    """Quarantined rows per reason, reasons with none left out, most first."""
    counts = {r: int(n) for r, n in manifest.quarantine.get("counts", {}).items() if n}
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def quarantine_line(manifest: Manifest, prepared_uri: str) -> str:
    """``quarantined 12 of 13,083 input rows (0.09%; data.max_bad_fraction 5.00%): duplicate=5, ...; listed in
    <prepared_uri>/quarantine.jsonl``, or ``no rows quarantined (N input rows)``."""
    q = manifest.quarantine
    if not q.get("rows"):
        return f"no rows quarantined ({q.get('input_rows', 0):,} input rows)"
    per_reason = ", ".join(f"{r}={n}" for r, n in quarantine_counts(manifest).items())
    return (
        f"quarantined {q['rows']:,} of {q['input_rows']:,} input rows ({q['bad_fraction']:.2%}; "
        f"data.max_bad_fraction {q['max_bad_fraction']:.2%}): {per_reason}; listed in "
        f"{storage.join(prepared_uri, q['path'])}"
    )


def summary_lines(manifest: Manifest, prepared_uri: str) -> list[str]:
    """The lines the prepare step prints: what was prepared, then what was quarantined."""
    counts = " / ".join(f"{n:,} {split}" for split, n in manifest.row_counts.items())
    return [
        f"prepared {manifest.dataset}: {counts} rows, {len(manifest.label_map)} labels, content hash "
        f"{manifest.content_hash[:12]}",
        quarantine_line(manifest, prepared_uri),
    ]


def warning_lines(warnings: list[dict[str, Any]]) -> list[str]:
    """``warning: <message>`` for each warning (a manifest's, or a step's in the same shape)."""
    return [f"warning: {w['message']}" for w in warnings]
