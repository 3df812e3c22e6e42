#!/usr/bin/env bash
# The README's test command: set up a fresh machine, lint, and run the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# Tests find the bundled public data sets through this mirror (the project itself never needs ../shared).
export MATTA_DATA_MIRROR="${MATTA_DATA_MIRROR:-$(cd .. && pwd)/shared/data}"
export HF_HUB_OFFLINE=1
.venv/bin/pytest "$@"
