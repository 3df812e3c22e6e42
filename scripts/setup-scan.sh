#!/usr/bin/env bash
# Sets up .venv-scan, the venv of the static security scan of infra/ (tests/infra runs checkov from it). Safe to
# rerun: skipped when the pinned version is there. scripts/setup.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The static security scan of infra/ (tests/infra) runs checkov from its own venv: checkov pins versions of
# packaging, cachetools and others that conflict with kfp and mlflow. Pinned; skipped when already there.
CHECKOV_VERSION="3.3.30"
if [ ! -x .venv-scan/bin/python ]; then
  "$PYTHON" -m venv .venv-scan
fi
if ! .venv-scan/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('checkov') != sys.argv[1])" \
     "$CHECKOV_VERSION" 2>/dev/null; then
  # --no-compile: checkov pulls in ~200 MB (botocore alone is most of it); compiling all of it at install time
  # costs minutes, and the scan imports only a small part (compiled on first use).
  .venv-scan/bin/pip install -q --no-compile "checkov==$CHECKOV_VERSION"
fi
