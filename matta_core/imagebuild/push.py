"""Push a built image to its registry and report the digest a pipeline should pin."""

from __future__ import annotations

import os
import re
import subprocess

from matta_core.image import ImageBuildError, ImageTagError, check_image_ref
from matta_core.imagebuild.engine import Engine

_EXAMPLE = "'europe-docker.pkg.dev/PROJECT/REPO/matta:0.1.0'"


def push_image(engine: Engine, name: str) -> str:
    """Push ``name``; return the pushed digest (``sha256:...``) or '' when the engine does not print one."""
    name = check_image_ref(name, allow_digest=False)
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first) or first.startswith("localhost"):
        # Checked before anything is sent: "matta:0.1.0" would go to Docker Hub's official namespace.
        raise ImageTagError(f"pushing {name!r} needs a registry host in the name, e.g. {_EXAMPLE}")
    command = engine.command("push", name)
    if engine.kind == "podman":
        command[2:2] = ["--format", "v2s2"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **engine.env})
    if done.returncode != 0:
        raise ImageBuildError(f"{engine.kind} push of {name} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    digest = re.search(r"sha256:[0-9a-f]{64}", done.stdout + done.stderr)
    # The digest is what a pipeline should pin (MATTA_IMAGE=repo@sha256:...): tags can be re-pushed.
    print(f"pushed {name}" + (f" as {name.rsplit(':', 1)[0]}@{digest[0]}" if digest else ""), flush=True)
    return digest[0] if digest else ""
