"""The Dockerfile's base image: the official Python image from its registry, or one built from Debian packages.

docker/Dockerfile starts ``FROM ${PYTHON_IMAGE}`` (pinned: ``python:3.11.15-slim-bookworm``). A build machine
that can reach no container registry cannot pull it, but can usually reach its Debian mirror: then the base is
built here with ``debootstrap --variant=minbase`` (Debian 12 and its Python 3.11, the same distribution the
official image is built on) and imported into the engine under :data:`LOCAL_BASE`. It is built once per engine
storage and reused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from matta_core.image import ImageBuildError
from matta_core.imagebuild.engine import Engine

LOCAL_BASE = "localhost/debian-python:3.11-bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Registry hosts by the first part of an image name; Docker Hub names have none.
_DOCKER_HUB = "registry-1.docker.io"


def registry_host(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return _DOCKER_HUB


def registry_reachable(image: str, timeout_s: float = 5.0) -> bool:
    """Whether the registry that serves ``image`` answers its API at all (401 counts: it is there)."""
    host = registry_host(image)
    return not host.startswith("localhost") and url_answers(f"https://{host}/v2/", timeout_s)


def url_answers(url: str, timeout_s: float = 5.0) -> bool:
    """Whether anything answers at ``url``: an HTTP error status counts (the server is there), no answer does not."""
    try:
        urllib.request.urlopen(url, timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def ensure_local_base(engine: Engine, *, rebuild: bool = False) -> str:
    """Return :data:`LOCAL_BASE`, building it from Debian packages first if the engine does not have it."""
    if not rebuild and engine.run("image", "inspect", LOCAL_BASE, check=False).returncode == 0:
        return LOCAL_BASE
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ImageBuildError(
            "no container registry can be reached to pull the Python base image, and debootstrap (which builds "
            "one from Debian packages) is not installed: `bash scripts/container-engine.sh` installs it, or "
            "pass --base-image NAME of a Python 3.11 image your engine already has"
        )
    mirror = debian_mirror()
    started = time.monotonic()
    print(f"building the base image {LOCAL_BASE} from Debian {DEBIAN_SUITE} packages ({mirror})", flush=True)
    with tempfile.TemporaryDirectory(prefix="matta-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        done = subprocess.run(
            [debootstrap, "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", DEBIAN_SUITE,
             str(rootfs), mirror], capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageBuildError(f"debootstrap of Debian {DEBIAN_SUITE} from {mirror} failed (exit "
                                  f"{done.returncode}): {_last_lines(done.stdout + done.stderr)}")
        # What the official slim image also leaves out: apt's package lists and downloaded .debs (an image
        # installs with `apt-get update` first anyway), documentation, man pages and translations.
        for folder in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/locale",
                       "usr/share/info"):
            shutil.rmtree(rootfs / folder, ignore_errors=True)
        for folder in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
            (rootfs / folder).mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(engine.command("import", "-", LOCAL_BASE), stdin=tar.stdout,
                                  capture_output=True, text=True, env={**os.environ, **engine.env})
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImageBuildError(f"importing the Debian root file system as {LOCAL_BASE} failed: "
                                  f"{_last_lines(imported.stderr)}")
    print(f"built {LOCAL_BASE} in {time.monotonic() - started:.0f} s", flush=True)
    return LOCAL_BASE


def debian_mirror() -> str:
    """The Debian mirror apt on this machine already uses (deb822 ``.sources`` or ``sources.list``)."""
    candidates = [*sorted(Path("/etc/apt/sources.list.d").glob("*.sources")), Path("/etc/apt/sources.list"),
                  *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^URIs:\s*(\S+)", text, flags=re.M) + re.findall(
                r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+" + DEBIAN_SUITE + r"\s", text, flags=re.M):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def _last_lines(text: str, n: int = 8) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()][-n:]
    return "\n  " + "\n  ".join(lines) if lines else "(no output)"
