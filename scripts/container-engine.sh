#!/usr/bin/env bash
# Makes sure this machine has a container engine that can build and run matta's image.
#
# A Docker engine that answers is used as it is. Otherwise podman (rootful, runc, overlay storage) is installed
# from Debian's packages with debootstrap, which builds the base image where no container registry can be
# reached. Podman is configured only by the files in matta_core/imagebuild/podman/, through CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF (matta sets both for its own podman calls): the system's containers configuration is
# left alone. Safe to rerun.
set -euo pipefail
if command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
   && ! docker version 2>/dev/null | grep -qi podman; then
  echo "a Docker engine answers: $(docker version --format '{{.Server.Version}}')"
  exit 0
fi
packages=(podman buildah debootstrap runc slirp4netns uidmap containernetworking-plugins
          golang-github-containers-common acl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no Docker engine answers and podman is not installed; this script installs podman with apt-get" \
         "(Debian/Ubuntu). Install Docker or podman with your system's package manager." >&2
    exit 2
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "installing ${missing[*]} (Debian packages)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "podman $(podman --version | awk '{print $3}') ready (matta's settings: matta_core/imagebuild/podman/)"
