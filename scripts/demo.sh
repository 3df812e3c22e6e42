#!/usr/bin/env bash
# The README's main command: set up a fresh machine and run the full Kubeflow pipeline locally (kfp.local) on
# Banking77 with the real MiniLM Teacher and embedded defaults: local files, MLflow on a sqlite file.
# Extra arguments go to `matta run` (e.g. --set train.epochs=5, --config my_run.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Offline mirror of the public data sets, when this checkout sits beside one; otherwise matta downloads Banking77
# from its pinned public source and checks its sha256.
if [ -z "${MATTA_DATA_MIRROR:-}" ] && [ -d ../shared/data/banking77 ]; then
  export MATTA_DATA_MIRROR="$(cd ../shared/data && pwd)"
fi
export HF_HUB_OFFLINE=1
start=$(date +%s)
.venv/bin/matta run "$@"
echo "wall time: $(( $(date +%s) - start )) s"
