#!/usr/bin/env bash
# The README's test command: set up a fresh machine, lint, and run the whole test suite (slow tests included).
#
# The container tests build the project's image and run the pipeline in it, so a container engine is set up first
# (scripts/container-engine.sh: a Docker engine that answers, else podman from Debian's packages; needs root or
# sudo to install). MATTA_CONTAINER_TESTS=0 skips that and deselects the container tests (-m "not container").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
marker=()
if [ "${MATTA_CONTAINER_TESTS:-1}" = 0 ]; then
  marker=(-m "not container")
else
  bash scripts/container-engine.sh
fi
# Tests find the bundled public data sets through this mirror (the project itself never needs ../shared).
export MATTA_DATA_MIRROR="${MATTA_DATA_MIRROR:-$(cd .. && pwd)/shared/data}"
export HF_HUB_OFFLINE=1
.venv/bin/pytest "${marker[@]}" "$@"
