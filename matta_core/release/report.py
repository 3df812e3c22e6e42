"""The gate report: one Markdown page with every size class's decision and the evidence behind it."""

from __future__ import annotations

from collections.abc import Sequence

from matta_core.evaluation.memory import format_bytes
from matta_core.release.gate import GateDecision
from matta_core.release.size_classes import BUDGET_KEYS, BYTE_BUDGETS, describe_budget

#: Cost keys of the candidate shown under each class (bytes in human units), beside the ones its budget bounds.
SHOWN_COSTS = ("dense_params", "bytes_on_disk", "resident_bytes", "latency_p95_ms")
_BYTE_KEYS = {BUDGET_KEYS[field] for field in BYTE_BUDGETS} | {"weight_bytes"}


def gate_report_markdown(decisions: Sequence[GateDecision], pipeline_run_id: str) -> str:
    """Summary table, then per class its budget, the candidate's measured costs, the comparison and every check
    (pass/fail with its evidence)."""
    lines = [f"# Release gate: pipeline run `{pipeline_run_id}`", "",
             "| size class | registered model | candidate | reference | accuracy diff (CI) | decision | version |",
             "|---|---|---|---|---|---|---|"]
    for d in decisions:
        c = d.comparison
        ci = "-" if c is None else f"{c.diff:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
        candidate = "-" if d.candidate is None else str(d.candidate.get("name"))
        reference = "-" if d.reference is None else d.reference.label()
        verdict = "PASS" if d.passed else "REJECT"
        version = "-" if d.registered_version is None else f"v{d.registered_version}" + (
            "" if d.version_created else " (existing)")
        lines.append(f"| {d.size_class} | {d.registered_model} | {candidate} | {reference} | {ci} | {verdict} | "
                     f"{version} |")
    for d in decisions:
        lines += ["", f"## {d.size_class}: {'PASS' if d.passed else 'REJECT'}", "",
                  f"Budget: {describe_budget(d.budget)}.", ""]
        if d.candidate is not None:
            keys = dict.fromkeys([*(BUDGET_KEYS[f] for f in d.budget), *SHOWN_COSTS])
            costs = ", ".join(f"{k} {_cost(k, d.candidate.get(k))}" for k in keys)
            lines += [f"Candidate `{d.candidate.get('name')}`: {costs}.", ""]
        if d.comparison is not None:
            c = d.comparison
            lines.append(f"Accuracy {c.candidate_accuracy:.4f} vs {c.reference_accuracy:.4f} on {c.n} test rows "
                         f"(sha256 `{d.test_rows_hash[:12]}`); {c.method}, {c.resamples} resamples, seed {c.seed}, "
                         f"{c.confidence:.0%} CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}].")
            lines.append("")
        lines += ["| check | result | evidence |", "|---|---|---|"]
        lines += [f"| {k.name} | {'pass' if k.passed else 'FAIL'} | "
                  f"{k.detail.replace('|', '/').replace(chr(10), '<br>')} |" for k in d.checks]
        for note in d.notes:
            lines.append(f"\nNote: {note}")
        if d.handoff_path:
            lines.append(f"\nA/B handoff: `{d.handoff_path}`")
    return "\n".join(lines) + "\n"


def _cost(key: str, value: object) -> str:
    if value is None:
        return "not measured"
    if key in _BYTE_KEYS and isinstance(value, int | float):
        return format_bytes(value)
    return f"{value:g}" if isinstance(value, float) else str(value)
