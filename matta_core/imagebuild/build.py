"""Build ``docker/Dockerfile`` (or ``Dockerfile.gpu``, or a service image such as ``docker/mlflow-server``) with
the machine's engine, the way a CI job would.

- engine: a Docker engine that answers, else podman (:mod:`matta_core.imagebuild.engine`);
- base: the Dockerfile's pinned official image where its registry answers, else one built from Debian packages
  (:mod:`matta_core.imagebuild.base`);
- build-machine inputs (CA bundle, pip's configuration and the folders it names) mounted read-only for the RUN
  steps only (:mod:`matta_core.imagebuild.host_inputs`; podman only: the Docker engine's classic builder has no
  build-time mounts, so with Docker the build must reach its indexes directly);
- labels and ``/etc/matta/image.json``: version, revision, creation time and the code version of the tree
  (service images: revision, source and creation time only; their version is the one of the software they serve).

A failed build leaves no image under the requested name: the build goes to a temporary tag first and is renamed
only on success (a re-tag, instantaneous), so a name always points at a complete build.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import tomllib
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from matta_core.image import (
    DEFAULT_PLATFORM,
    DOCKERFILES,
    REPO_ROOT,
    SERVICE_CONTEXTS,
    ImageBuildError,
    ImageTagError,
    Variant,
    check_image_ref,
)
from matta_core.imagebuild import base as base_image
from matta_core.imagebuild import host_inputs
from matta_core.imagebuild.engine import Engine, find_engine

DEFAULT_PYTHON_IMAGE = "python:3.11.15-slim-bookworm"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class BuiltImage:
    """What a build produced."""

    name: str  # as the engine lists it (podman: "localhost/matta:0.1.0")
    image_id: str
    size_bytes: int
    seconds: float
    engine: str
    base_image: str
    code_version: str | None  # None for a service image


def build(
    tag: str,
    *,
    code_version: str | None,
    variant: Variant = "cpu",
    context: Path | None = None,
    engine: Engine | None = None,
    base: str = "auto",
    host_inputs_mode: str = "auto",
    build_args: Mapping[str, str] | None = None,
    platform: str | None = DEFAULT_PLATFORM,
    quiet: bool = False,
    no_cache: bool = False,
) -> BuiltImage:
    """Build the image ``tag`` from ``context`` (a matta checkout) and return what was built.

    ``variant``: "cpu" or "gpu" (the project image, built from the checkout's root), or a service image of
    :data:`~matta_core.image.SERVICE_CONTEXTS` ("mlflow-server"), built from its own folder only.

    ``base``: "auto" (the pinned official image if its registry answers, else Debian packages), "registry", "debian",
    or an image name the engine already has. ``host_inputs_mode``: "auto"/"on" mounts pip's configuration and CA
    bundle into the RUN steps (podman only), "off" does not. ``no_cache`` rebuilds every layer (the base image is
    reused). ``code_version`` is baked into the label
    ``io.matta.code-version`` and ``/etc/matta/image.json`` (project image: required; service image: None).
    Raises :class:`ImageTagError` for a name KFP cannot cache on and :class:`ImageBuildError` for everything else
    (no engine, a failed RUN step with its last lines), before or instead of tagging anything.
    """
    tag = check_image_ref(tag, allow_digest=False)
    if variant not in DOCKERFILES and variant not in SERVICE_CONTEXTS:
        raise ImageTagError(f"variant {variant!r} is not one of {sorted([*DOCKERFILES, *SERVICE_CONTEXTS])}")
    if (code_version is None) != (variant in SERVICE_CONTEXTS):
        raise ValueError(f"code_version: the project image needs one, a service image takes none ({variant!r})")
    root = Path(context).resolve() if context is not None else REPO_ROOT
    service = SERVICE_CONTEXTS.get(variant)
    relative = f"{service}/Dockerfile" if service else DOCKERFILES[variant]
    dockerfile = root / relative
    if not dockerfile.is_file():
        raise ImageBuildError(f"no {relative} under {root}: pass the root of a matta checkout")
    engine = engine or find_engine()
    started = time.monotonic()

    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if service:
        # The revision of the checkout, "-dirty" if the service's folder was edited; no matta version or code
        # version: the image holds none of matta's code.
        labels = build_labels(root, copied=(service,))
        args = {key: labels[key] for key in ("REVISION", "SOURCE_URL") if key in labels} | {"CREATED": created}
    else:
        assert code_version is not None  # checked above
        args = {**build_labels(root), "CODE_VERSION": code_version, "CREATED": created}
    chosen_base = _choose_base(engine, variant, base, args)
    if variant == "cpu" and "TORCH_INDEX_URL" not in (build_args or {}) and not base_image.url_answers(CPU_TORCH_INDEX):
        # The build machine cannot reach PyTorch's CPU index: pip's configured index decides, and the Dockerfile
        # fails the build if that yields a CUDA build.
        print(f"{CPU_TORCH_INDEX} cannot be reached: torch comes from pip's configured index "
              "(the build fails if that is a CUDA build)", flush=True)
        args["TORCH_INDEX_URL"] = ""
    args.update(build_args or {})

    with tempfile.TemporaryDirectory(prefix="matta-build-") as tmp:
        mounts: list[host_inputs.Mount] = []
        if host_inputs_mode in ("auto", "on") and engine.kind == "podman":
            mounts = host_inputs.build_mounts(Path(tmp) / "pip")
        elif host_inputs_mode == "on":
            raise ImageBuildError("build-time mounts of the build machine's pip settings need podman (the Docker "
                                  "engine's builder has none): use --engine podman or --host-inputs off")
        staging = f"{_repository(tag)}:building-{uuid.uuid4().hex[:12]}"
        command = _build_command(engine, dockerfile.parent if service else root, dockerfile, staging, args, mounts,
                                 platform, no_cache)
        print(f"building {tag} with {engine.kind} from {dockerfile} (base {chosen_base}"
              f"{f', {len(mounts)} build-machine inputs mounted for RUN steps' if mounts else ''})", flush=True)
        _run_build(engine, command, tag, quiet)
    try:
        engine.run("tag", staging, tag)
    finally:
        engine.run("rmi", staging, check=False)
    info = image_info(engine, tag)
    built = BuiltImage(name=info.name, image_id=info.image_id, size_bytes=info.size_bytes,
                       seconds=time.monotonic() - started, engine=engine.kind, base_image=chosen_base,
                       code_version=code_version)
    print(f"built {built.name} ({built.image_id[:19]}): {built.size_bytes / 1e9:.2f} GB, {built.seconds:.0f} s"
          f"{f', code version {code_version}' if code_version else ''}", flush=True)
    return built


def _choose_base(engine: Engine, variant: Variant, base: str, args: dict[str, str]) -> str:
    if variant == "gpu":
        if base not in ("auto", "registry"):
            raise ImageBuildError("the GPU image builds only on its CUDA base image (nvidia/cuda, from a registry);"
                                  " --base applies to the CPU image")
        if not base_image.registry_reachable("nvidia/cuda:13.0.2-base-ubuntu24.04"):
            raise ImageBuildError(
                "the GPU image needs the nvidia/cuda base image from Docker Hub, which cannot be reached from this "
                "machine: build it where a registry answers (e.g. Cloud Build), or build the CPU image here")
        return "nvidia/cuda (Dockerfile.gpu's pin)"
    if base == "registry":
        return DEFAULT_PYTHON_IMAGE
    if base == "debian" or (base == "auto" and not base_image.registry_reachable(DEFAULT_PYTHON_IMAGE)):
        if base == "auto":
            print(f"no registry answers for {DEFAULT_PYTHON_IMAGE}: using a base built from Debian packages",
                  flush=True)
        args["PYTHON_IMAGE"] = base_image.ensure_local_base(engine)
        return args["PYTHON_IMAGE"]
    if base == "auto":
        return DEFAULT_PYTHON_IMAGE
    args["PYTHON_IMAGE"] = check_image_ref(base)
    return base


def _build_command(engine: Engine, root: Path, dockerfile: Path, tag: str, args: Mapping[str, str],
                   mounts: list[host_inputs.Mount], platform: str | None, no_cache: bool = False) -> list[str]:
    command = engine.command("build", "-f", str(dockerfile), "-t", tag, *(["--no-cache"] if no_cache else []))
    if engine.kind == "podman":
        # docker format: OCI images drop HEALTHCHECK and some registries' tooling expects v2s2 manifests.
        command += ["--format", "docker", "--network", "host", "--layers"]
        for mount in mounts:
            command += ["-v", mount.podman_flag()]
    if platform:
        command += ["--platform", platform]
    for key, value in sorted(args.items()):
        command += ["--build-arg", f"{key}={value}"]
    return [*command, str(root)]


def _run_build(engine: Engine, command: list[str], tag: str, quiet: bool) -> None:
    """Stream the build's output; on failure raise with the failing step and its last lines."""
    last: deque[str] = deque(maxlen=25)
    step = ""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **engine.env})
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        last.append(line)
        if line.startswith(("STEP ", "Step ", "#")) and ("RUN" in line or "COPY" in line or "FROM" in line):
            step = line
        if not quiet:
            print(line, flush=True)
    if process.wait() != 0:
        tail = "\n  ".join(last)
        raise ImageBuildError(f"the build of {tag} failed (exit {process.returncode}) at {step or 'an early step'}; "
                              f"its last lines:\n  {tail}\nNothing was tagged {tag}.")


@dataclass(frozen=True)
class ImageInfo:
    """The engine's view of one image."""

    name: str  # as the engine lists it (podman: "localhost/matta:0.1.0" for "matta:0.1.0")
    image_id: str
    size_bytes: int
    labels: dict[str, str]
    user: str


def image_info(engine: Engine, name: str) -> ImageInfo:
    """Inspect ``name``; raise :class:`ImageBuildError` if the engine has no such image."""
    done = engine.run("image", "inspect", name, check=False)
    if done.returncode != 0:
        raise ImageBuildError(f"{engine.kind} has no image {name!r}: build it with `matta image build`")
    data = json.loads(done.stdout)[0]
    tags = data.get("RepoTags") or [name]
    listed = next((t for t in tags if t == name or t.endswith("/" + name)), tags[0])
    config = data.get("Config") or {}
    return ImageInfo(str(listed), str(data["Id"]), int(data.get("Size") or 0),
                     dict(config.get("Labels") or {}), str(config.get("User") or ""))


def _repository(tag: str) -> str:
    name = tag.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


#: What the project's Dockerfiles copy from the checkout: an edit there makes the revision "-dirty".
PROJECT_COPIED = ("pyproject.toml", "README.md", "matta_core")


def build_labels(root: Path, copied: tuple[str, ...] = PROJECT_COPIED) -> dict[str, str]:
    """Values for the OCI labels, read from the tree being built; a modified tree says so in its revision.

    ``copied``: the paths the image is built from, relative to ``root``; a change under one marks the revision
    "-dirty".
    """
    args: dict[str, str] = {}
    try:
        with (root / "pyproject.toml").open("rb") as f:
            args["VERSION"] = str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass  # the Dockerfile's default ("unset") is honest
    revision = _git(root, "rev-parse", "HEAD")
    if revision:
        # Only what the Dockerfile copies; untracked files there count too, since they end up in the image.
        dirty = _git(root, "status", "--porcelain", "--", *copied)
        args["REVISION"] = revision + ("-dirty" if dirty else "")
    source = _git(root, "remote", "get-url", "origin")
    if source:
        args["SOURCE_URL"] = _without_credentials(source)
    return args


def _without_credentials(url: str) -> str:
    """A remote like https://user:token@host/repo must not end up in a label anyone can read."""
    if "://" not in url:
        return url  # scp-style "git@host:org/repo": the user name is no secret
    parts = urlsplit(url)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
