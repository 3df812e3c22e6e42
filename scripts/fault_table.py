"""Render the README's "Faults survived" table from the fault tests' results.

    bash scripts/test.sh                      # runs the fault tests; each passing one writes its row
    .venv/bin/python scripts/fault_table.py   # rewrites the table between the README's markers

Rows come from ``build/test-results/faults.json`` (see ``tests/fault_record.py``): only tests that passed, each
with the line the user saw as the test read and asserted it. ``--check`` exits 1 when the README differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"


def table(rows: list[dict[str, str]]) -> str:
    lines = ["| Case | Fault | What the user sees | What is kept | Test |", "|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: r["case"]):
        # Double backticks: a message may quote a command in single ones.
        cells = [row["case"], row["fault"], f"`` {row['sees']} ``", row["kept"], f"`{row['test']}`"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "build" / "test-results" / "faults.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="Exit 1 if the README's table differs.")
    args = parser.parse_args()
    if not args.results.is_file():
        print(f"error: {args.results} not found: run the fault tests first (pytest tests/faults ...)", file=sys.stderr)
        return 2
    readme = args.readme.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"error: {args.readme} has no {BEGIN} ... {END} section", file=sys.stderr)
        return 2
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{BEGIN}\n{table(json.loads(args.results.read_text()))}\n{END}{tail}"
    if args.check:
        return 0 if updated == readme else 1
    args.readme.write_text(updated)
    print(f"wrote {args.readme}: {len(json.loads(args.results.read_text()))} fault cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
