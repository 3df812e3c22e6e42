#!/usr/bin/env bash
# Builds the project's image on this machine: a container engine first (scripts/container-engine.sh: a Docker
# engine that answers, else podman), the virtualenv (scripts/setup.sh), then `matta image build`, which picks the
# engine and the base image and prints the image's name, size and code version. Arguments go to `matta image build`
# (e.g. --tag REGISTRY/matta:0.1.0 --push, --gpu, --quiet).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/container-engine.sh
bash scripts/setup.sh
.venv/bin/matta image build "$@"
