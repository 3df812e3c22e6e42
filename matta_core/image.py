"""The project's container image by name: which one the components run in, and which names can be trusted.

Every KFP component runs in this image (``base_image=default_image_tag()``). KFP caches a step on its image
reference among other things, so a name that moves between builds (``:latest``, or no tag, which means
``:latest``) would serve results computed by older code: such names are refused here. Building the image is
:mod:`matta_core.imagebuild`'s job; this module imports nothing heavy, so every task can use it.

The same machinery builds the images of the services around the pipeline (:data:`SERVICE_CONTEXTS`): the MLflow
tracking server that ``infra/mlflow`` runs, tagged with the MLflow version its Dockerfile pins.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path
from typing import Literal

Variant = Literal["cpu", "gpu", "mlflow-server"]

#: The project image's Dockerfiles; their build context is the checkout's root (allowlisted by .dockerignore).
DOCKERFILES: dict[str, str] = {"cpu": "docker/Dockerfile", "gpu": "docker/Dockerfile.gpu"}
#: Service images: the folder holding the Dockerfile is the whole build context. They copy nothing from the
#: checkout, so none of it is sent to the engine or can reach a layer.
SERVICE_CONTEXTS: dict[str, str] = {"mlflow-server": "docker/mlflow-server"}
#: The mlflow-server image's repository name, as infra/ pushes it (``REGISTRY/matta/mlflow-server:<MLflow version>``).
MLFLOW_SERVER_REPOSITORY = "mlflow-server"
REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_ENV = "MATTA_IMAGE"
DISTRIBUTION = "matta"
# KFP clusters run amd64 nodes; without this a build on an arm64 laptop yields an image that dies there
# with "exec format error".
DEFAULT_PLATFORM = "linux/amd64"

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


def default_mlflow_server_tag(root: Path = REPO_ROOT) -> str:
    """``mlflow-server:<MLflow version>``: the version pinned in ``docker/mlflow-server/Dockerfile``.

    Read from the Dockerfile, so the tag cannot drift from what the image installs.
    """
    dockerfile = root / SERVICE_CONTEXTS["mlflow-server"] / "Dockerfile"
    try:
        pins = re.findall(r"(?<![\w.-])mlflow(?:\[[\w,]+\])?==([\w.]+)", dockerfile.read_text())
    except OSError as exc:
        raise ImageBuildError(f"cannot read {dockerfile} for the MLflow version (the image tag): {exc}") from None
    if len(set(pins)) != 1:
        raise ImageBuildError(f"{dockerfile} must pin MLflow exactly once as mlflow==X.Y.Z (the image tag); "
                              f"found {pins or 'none'}")
    return f"{MLFLOW_SERVER_REPOSITORY}:{_version_tag(pins[0])}"


def check_cluster_image_ref(ref: str) -> str:
    """Return ``ref`` if a cluster can pull it and it names one build for good; raise :class:`ImageTagError` otherwise.

    Stricter than :func:`check_image_ref`, for pipelines compiled or submitted to a cluster (a local run may use
    ``localhost/matta:0.1.0``):

    - the name starts with a registry host (``europe-docker.pkg.dev/...``, ``ghcr.io/...``, ``docker.io/...``,
      ``registry:5000/...``): without one the cluster's runtime looks on Docker Hub, and ``localhost`` (or
      127.0.0.1) is a registry on the machine that built the image, not one the nodes can reach;
    - and either a digest (``@sha256:<64 hex>``, with or without a tag), which pins one build, or a tag that
      contains a full version (``0.1.0``, ``v1.2.3``, ``0.1.0-gpu``, ``0.1.0-rc1``), a git commit hash (7 to 64 hex
      digits between separators) or a date (``2026-12-05``, ``20261205``). Refused: no tag (``:latest``), moving
      names (``latest``, ``stable``, ``main``, ``dev``, ``nightly``, ...), a bare major (``1``, ``v1``) or
      major.minor version (``1.2``, ``3.11-slim``), which registries re-point at every patch release, and any
      other tag that says nothing about which build it is.

    KFP's step cache keys on the image name: a name that moves serves results computed by older code, and
    pods that start after a re-push run other code than their siblings.
    """
    ref = ref.strip()
    if not ref:
        raise ImageTagError(f"image name is empty: give the registry path and a version tag, e.g. {_EXAMPLE_REGISTRY}")
    name, tag, digest = _split_ref(ref)
    if digest is not None and not _DIGEST_RE.fullmatch(digest):
        raise ImageTagError(f"image reference {ref!r}: the digest must be 'sha256:' and 64 lowercase hex digits")
    _check_name(ref, name)
    if tag is not None and not _TAG_RE.fullmatch(tag):
        raise ImageTagError(
            f"image name {ref!r}: tag {tag!r} is not a Docker tag (letters, digits, '_', '.', '-'; "
            "not starting with '.' or '-'; at most 128 characters)"
        )
    problems = [p for p in (_cluster_host_problem(name), None if digest else _cluster_tag_problem(tag)) if p]
    if problems:
        raise ImageTagError(
            f"image {ref!r} is not fit for a cluster: {'; and '.join(problems)}. A cluster pulls every task's image "
            "from a registry, and KFP's step cache keys on the image name, so the name must say where the image "
            f"lives and which build it is: e.g. {_EXAMPLE_REGISTRY} (a tag with a git commit hash or a date works "
            "too), or the digest the push printed, 'REGISTRY/PATH/matta@sha256:<64 hex>'"
        )
    return ref


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


#: Tags that registries re-point at newer builds by convention (compared in lowercase).
_MOVING_TAGS = frozenset({
    "latest", "stable", "main", "master", "trunk", "head", "dev", "develop", "development", "nightly", "edge",
    "next", "canary", "beta", "alpha", "unstable", "testing", "staging", "prod", "production", "release",
    "current", "lts", "snapshot",
})
# A tag names one build if it carries a full version, a commit hash or a date, each between separators.
_FULL_VERSION_RE = re.compile(r"(?:^|[-_.])v?\d+\.\d+\.\d+", re.IGNORECASE)
_COMMIT_RE = re.compile(r"(?:^|[-_.])[0-9a-f]{7,64}(?=$|[-_.])", re.IGNORECASE)
_DATE_RE = re.compile(
    r"(?:^|[-_.])(?:19|20)\d\d([-_.]?)(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])(?=$|[-_.tT]|\d)"
)
# "1", "v1", "1.2", "3.11-slim": official images re-push these at every minor or patch release.
_PARTIAL_VERSION_RE = re.compile(r"v?\d+(?:\.\d+)?(?:[-_].*)?", re.IGNORECASE)


def _registry_host(name: str) -> str | None:
    """The registry host[:port] a name starts with, by Docker's rule (a '.' or ':' in it, or 'localhost')."""
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def _cluster_host_problem(name: str) -> str | None:
    host = _registry_host(name)
    if host is None:
        hub = f"docker.io/{name if '/' in name else 'library/' + name}"
        return (f"it names no registry host, so the cluster's nodes would look for it on Docker Hub ({hub!r}), "
                "not in your registry")
    if host.split(":")[0].lower() in ("localhost", "0.0.0.0") or host.startswith("127."):
        return f"{host!r} is a registry on the machine that built the image, which the cluster's nodes cannot reach"
    return None


def _cluster_tag_problem(tag: str | None) -> str | None:
    if tag is None:
        return "it has no tag, which means ':latest', a name every build moves"
    if any(r.search(tag) for r in (_FULL_VERSION_RE, _COMMIT_RE, _DATE_RE)):
        return None
    if tag.lower() in _MOVING_TAGS:
        return f"tag {tag!r} is a moving name: it is re-pointed at every new build"
    if _PARTIAL_VERSION_RE.fullmatch(tag):
        return (f"tag {tag!r} is a major or major.minor version, which registries re-point at every newer "
                "release (official images do)")
    return (f"tag {tag!r} does not name one build: it holds no full version (1.2.3), git commit hash (7+ hex "
            "digits) or date (2026-12-05)")


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
