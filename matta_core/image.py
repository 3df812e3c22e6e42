"""The project's container image: its name, and building it with the Docker Engine.

Every KFP component runs in this image (``base_image=default_image_tag()``). KFP caches a step on its image
reference among other things, so a name that moves between builds (``:latest``, or no tag, which means
``:latest``) would serve results computed by older code: such names are refused here.

Only :func:`build_image` needs the ``docker`` Python SDK and an engine; it is imported lazily so that the
image itself, which has neither, can still import this module for :func:`default_image_tag`.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import tomllib
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

Variant = Literal["cpu", "gpu"]

DOCKERFILES: dict[str, str] = {"cpu": "docker/Dockerfile", "gpu": "docker/Dockerfile.gpu"}
REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_ENV = "MATTA_IMAGE"
DISTRIBUTION = "matta"
# KFP clusters run amd64 nodes; without this a build on an arm64 laptop yields an image that dies there
# with "exec format error".
DEFAULT_PLATFORM = "linux/amd64"

_DEFAULT_ENGINE = "unix:///var/run/docker.sock"
_CONNECT_TIMEOUT_S = 10
# The build's HTTP read timeout is the longest silence between two log lines: pip prints nothing while it
# downloads a multi-GB CUDA torch wheel.
_BUILD_TIMEOUT_S = 3600

_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_REGISTRY_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?")
_EXAMPLE_REGISTRY = "'europe-docker.pkg.dev/PROJECT/REPO/matta:0.1.0'"
_EXAMPLE = f"'matta:0.1.0' or {_EXAMPLE_REGISTRY}"


class ImageBuildError(RuntimeError):
    """The image could not be built or pushed (no engine, a failed build step, a refused push)."""


class ImageTagError(ValueError):
    """An image reference that is malformed, or that KFP's step cache cannot trust (``:latest``, untagged)."""


def check_image_ref(ref: str, *, allow_digest: bool = True) -> str:
    """Return ``ref`` if it names one immutable image version; raise :class:`ImageTagError` otherwise.

    Accepted: ``name:tag`` with a tag other than ``latest``, and (with ``allow_digest``) ``name@sha256:...``
    or ``name:tag@sha256:...``. The name may carry a registry host and port.
    """
    ref = ref.strip()
    if not ref:
        raise ImageTagError(f"image name is empty: give a name with a version tag, e.g. {_EXAMPLE}")
    name, tag, digest = _split_ref(ref)
    if digest is not None:
        if not allow_digest:
            raise ImageTagError(f"image name {ref!r} has a digest: a build is named by a tag, e.g. {_EXAMPLE}")
        if not _DIGEST_RE.fullmatch(digest):
            raise ImageTagError(f"image reference {ref!r}: the digest must be 'sha256:' and 64 lowercase hex digits")
    _check_name(ref, name)
    if tag is None and digest is None:
        raise ImageTagError(
            f"image name {ref!r} has no tag: Docker would use ':latest', which moves with every build, and KFP's "
            f"step cache (keyed on the image) would serve results of older code. Use a version tag, e.g. {_EXAMPLE}"
        )
    if tag is not None:
        if tag.lower() == "latest" and digest is None:
            raise ImageTagError(
                f"image name {ref!r} uses ':latest', which moves with every build: KFP's step cache (keyed on the "
                f"image) would serve results of older code. Use a version tag, e.g. {_EXAMPLE}"
            )
        if not _TAG_RE.fullmatch(tag):
            raise ImageTagError(
                f"image name {ref!r}: tag {tag!r} is not a Docker tag (letters, digits, '_', '.', '-'; "
                "not starting with '.' or '-'; at most 128 characters)"
            )
    return ref


def default_image_tag() -> str:
    """The image the KFP components run in: ``$MATTA_IMAGE`` if set, else ``matta:<package version>``.

    ``MATTA_IMAGE`` is how a deployment points the pipeline at its registry copy (ideally by digest).
    """
    override = os.environ.get(IMAGE_ENV, "").strip()
    if override:
        try:
            return check_image_ref(override, allow_digest=True)
        except ImageTagError as exc:
            raise ImageTagError(f"{IMAGE_ENV}: {exc}") from None
    return f"matta:{_version_tag(_package_version())}"


def build_image(
    tag: str,
    *,
    variant: Variant = "cpu",
    context: Path | None = None,
    push: bool = False,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = DEFAULT_PLATFORM,
) -> str:
    """Build ``docker/Dockerfile`` (or ``Dockerfile.gpu``) as ``tag``, optionally push it; return the image id.

    Progress lines from the engine are printed as they come. ``context`` defaults to the repository root
    (its ``.dockerignore`` decides what is sent). ``build_args`` override the defaults (``VERSION``,
    ``REVISION``, ``SOURCE_URL`` for the OCI labels; ``TORCH_INDEX_URL`` etc. as the Dockerfiles declare).
    ``platform=None`` builds for the engine's own architecture.

    Raises :class:`ImageTagError` for a tag KFP cannot cache on (before anything is built) and
    :class:`ImageBuildError` when no engine is reachable or the build or push fails.
    """
    tag = check_image_ref(tag, allow_digest=False)
    if variant not in DOCKERFILES:
        raise ValueError(f"variant {variant!r} is not one of {sorted(DOCKERFILES)}")
    repository, tag_only = _split_tag(tag)
    assert tag_only is not None  # check_image_ref refused untagged names
    if push and "/" not in repository:
        # Checked before the long build: "matta:0.1.0" would be pushed to Docker Hub's official namespace.
        raise ImageTagError(f"push=True needs a registry path in the image name, e.g. {_EXAMPLE_REGISTRY}")
    root = Path(context).resolve() if context is not None else REPO_ROOT
    dockerfile = DOCKERFILES[variant]
    if not (root / dockerfile).is_file():
        raise ImageBuildError(f"no {dockerfile} under {root}: pass context= the root of a matta checkout")
    args = {**_default_build_args(root), **(build_args or {})}

    client = _connect()
    try:
        image_id = _build(client.api, root, dockerfile, tag, args, platform)
        print(f"built {tag} ({image_id})", flush=True)
        if push:
            _push(client.api, repository, tag_only)
    finally:
        client.close()
    return image_id


# --- engine ---------------------------------------------------------------------------------------------


def _connect() -> Any:
    """A client whose engine answered, or an :class:`ImageBuildError` that says where it looked."""
    try:
        docker = importlib.import_module("docker")
        docker_errors = importlib.import_module("docker.errors")
    except ImportError:
        docker = None
    # A missing SDK can also show up as the repository's own docker/ folder imported as a namespace package.
    if docker is None or not hasattr(docker, "from_env"):
        raise ImageBuildError("the docker Python SDK is not installed: pip install 'docker>=7.1'")
    try:
        client = docker.from_env(timeout=_CONNECT_TIMEOUT_S)
        client.ping()
    except (docker_errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
        # `from None`: the cause is summarised in the message; the caller needs no trace through requests.
        raise ImageBuildError(
            f"no Docker engine reachable at {engine_address()}: start Docker, or set DOCKER_HOST; on CI without "
            "an engine, build the image with your registry's builder (e.g. Cloud Build) from docker/Dockerfile "
            f"(cause: {_short(exc)})"
        ) from None
    client.api.timeout = _BUILD_TIMEOUT_S
    return client


def engine_address() -> str:
    """Where the docker SDK looks for an engine: ``DOCKER_HOST``, else the current docker context."""
    host = os.environ.get("DOCKER_HOST", "").strip()
    if host:
        return host
    try:  # docker>=7.2 falls back to the CLI's current context; 7.1 goes straight to the default socket.
        from docker.context import ContextAPI

        from_context = getattr(ContextAPI, "kwargs_from_context", None)
        if from_context is not None:
            host = str(from_context().get("base_url") or "")
    except Exception:  # an unreadable CLI config must not hide the real error being reported
        host = ""
    return host.replace("http+unix://", "unix://") or _DEFAULT_ENGINE


def _build(api: Any, root: Path, dockerfile: str, tag: str, args: Mapping[str, str], platform: str | None) -> str:
    print(f"building {tag} from {root / dockerfile} (platform {platform or 'of the engine'})", flush=True)
    image_id: str | None = None
    try:
        chunks = api.build(
            path=str(root),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(args),
            platform=platform,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in _chunks(chunks):
            if "error" in chunk:
                raise ImageBuildError(f"docker build of {tag} failed: {str(chunk['error']).strip()}")
            if line := str(chunk.get("stream", "")).rstrip():
                print(line, flush=True)
            elif chunk.get("status") and not chunk.get("progressDetail"):
                print(" ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k)), flush=True)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
        if image_id is None:  # engines that do not report the id in the stream
            image_id = str(api.inspect_image(tag)["Id"])
    except ImageBuildError:
        raise
    except Exception as exc:  # docker.errors.APIError, requests' timeouts and connection drops
        raise ImageBuildError(f"docker build of {tag} failed: {_short(exc)}") from None
    return image_id


def _push(api: Any, repository: str, tag: str) -> None:
    print(f"pushing {repository}:{tag}", flush=True)
    try:
        for chunk in _chunks(api.push(repository, tag=tag, stream=True, decode=True)):
            if "error" in chunk:
                raise ImageBuildError(f"docker push of {repository}:{tag} failed: {str(chunk['error']).strip()}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                # The digest is what a pipeline should pin (MATTA_IMAGE=repo@sha256:...): tags can be re-pushed.
                print(f"pushed {repository}@{aux['Digest']}", flush=True)
            elif chunk.get("status") and not chunk.get("progressDetail"):
                print(" ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k)), flush=True)
    except ImageBuildError:
        raise
    except Exception as exc:
        raise ImageBuildError(f"docker push of {repository}:{tag} failed: {_short(exc)}") from None


def _chunks(stream: Iterable[Any]) -> Iterable[dict[str, Any]]:
    """The engine's decoded JSON messages; a non-streamed reply arrives as one dict."""
    for chunk in [stream] if isinstance(stream, dict) else stream:
        if isinstance(chunk, dict):
            yield chunk


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- names and labels -----------------------------------------------------------------------------------


def _split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``name[:tag][@digest]`` -> (name, tag, digest); a ':' before the last '/' is a registry port."""
    name, _, digest = ref.partition("@")
    repository, tag = _split_tag(name)
    return repository, tag, (digest if "@" in ref else None)


def _split_tag(name: str) -> tuple[str, str | None]:
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return name, None
    repository, _, tag = name.rpartition(":")
    return repository, tag


def _check_name(ref: str, name: str) -> None:
    parts = name.split("/")
    # Docker's rule: the first part is a registry host if it has a '.' or ':' or is 'localhost'.
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _REGISTRY_RE.fullmatch(parts[0]):
            raise ImageTagError(f"image name {ref!r}: {parts[0]!r} is not a registry host[:port]")
        parts = parts[1:]
    for part in parts:
        if not _PATH_COMPONENT_RE.fullmatch(part):
            raise ImageTagError(
                f"image name {ref!r}: {part!r} is not a valid repository name component (lowercase letters and "
                "digits, separated by '.', '_', '__' or '-')"
            )


def _package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ImageBuildError(
            f"the {DISTRIBUTION} package is not installed, so its version (the image tag) is unknown: "
            f"pip install -e . , or set {IMAGE_ENV}"
        ) from None


def _version_tag(version: str) -> str:
    """A PEP 440 version as a Docker tag: '+' (local versions) and '!' (epochs) are not allowed there."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", version)


def _default_build_args(root: Path) -> dict[str, str]:
    """Values for the OCI labels, read from the tree being built; a modified tree says so in its revision."""
    args: dict[str, str] = {}
    try:
        with (root / "pyproject.toml").open("rb") as f:
            args["VERSION"] = str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass  # the Dockerfile's default ("unset") is honest
    revision = _git(root, "rev-parse", "HEAD")
    if revision:
        # Only what the Dockerfiles copy; untracked files there count too, since they end up in the image.
        dirty = _git(root, "status", "--porcelain", "--", "pyproject.toml", "README.md", "matta_core")
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
