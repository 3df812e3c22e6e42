"""check_cluster_image_ref: which image names a cluster can pull and trust to name one build."""

from __future__ import annotations

import pytest

from matta_core.image import ImageTagError, check_cluster_image_ref, check_image_ref

DIGEST = "sha256:" + "0123456789abcdef" * 4
REGISTRY = "europe-docker.pkg.dev/proj/repo/matta"

ACCEPTED = [
    f"{REGISTRY}:0.1.0",
    f"{REGISTRY}:v1.2.3",
    f"{REGISTRY}:0.1.0-gpu",
    f"{REGISTRY}:0.1.0-rc1",
    f"{REGISTRY}:0.1.0rc1",  # PEP 440 pre-release, as _version_tag writes it
    f"{REGISTRY}:0.1.0-src.3f2a9c01d4e5b6a7",  # a code version with '+' made tag-safe
    f"{REGISTRY}:gpu-1.2.3",
    f"{REGISTRY}:abc1234",  # a git short hash
    f"{REGISTRY}:main-3f2a9c01d4e5",  # branch name plus commit: the commit pins it
    f"{REGISTRY}:{'ab' * 20}",  # a full 40-digit commit hash
    f"{REGISTRY}:2026-12-05",
    f"{REGISTRY}:nightly-20261205",
    f"{REGISTRY}@{DIGEST}",
    f"{REGISTRY}:0.1.0@{DIGEST}",
    f"{REGISTRY}:latest@{DIGEST}",  # the digest pins the build; the tag is only a label then
    "ghcr.io/org/matta:1.0.0",
    "docker.io/library/python:3.11.15-slim-bookworm",  # Docker Hub, but named explicitly
    "registry:5000/matta:0.1.0",  # a port makes it a host (Docker's rule)
    "10.0.0.5:5000/team/matta:0.1.0",
]


@pytest.mark.parametrize("ref", ACCEPTED)
def test_accepted(ref: str) -> None:
    assert check_cluster_image_ref(ref) == ref
    assert check_cluster_image_ref(f"  {ref} ") == ref
    assert check_image_ref(ref)  # everything a cluster takes, a local run takes too


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("matta:0.1.0", "names no registry host, so the cluster's nodes would look for it on Docker Hub "
                        "('docker.io/library/matta')"),
        ("library/matta:1.0.0", "Docker Hub ('docker.io/library/matta')"),
        ("myorg/matta:1.0.0", "Docker Hub ('docker.io/myorg/matta')"),
        (f"matta@{DIGEST}", "names no registry host"),  # a digest pins the build, not where it lives
        ("localhost/matta:0.1.0", "'localhost' is a registry on the machine that built the image"),
        ("localhost:5000/matta:0.1.0", "'localhost:5000' is a registry on the machine that built the image"),
        ("127.0.0.1:5000/matta:0.1.0", "'127.0.0.1:5000' is a registry on the machine that built the image"),
        (REGISTRY, "it has no tag, which means ':latest'"),
        (f"{REGISTRY}:latest", "tag 'latest' is a moving name"),
        (f"{REGISTRY}:LATEST", "tag 'LATEST' is a moving name"),
        (f"{REGISTRY}:stable", "tag 'stable' is a moving name"),
        (f"{REGISTRY}:main", "tag 'main' is a moving name"),
        (f"{REGISTRY}:master", "tag 'master' is a moving name"),
        (f"{REGISTRY}:dev", "tag 'dev' is a moving name"),
        (f"{REGISTRY}:nightly", "tag 'nightly' is a moving name"),
        (f"{REGISTRY}:edge", "tag 'edge' is a moving name"),
        (f"{REGISTRY}:1", "tag '1' is a major or major.minor version"),
        (f"{REGISTRY}:v1", "tag 'v1' is a major or major.minor version"),
        (f"{REGISTRY}:1.2", "tag '1.2' is a major or major.minor version"),
        (f"{REGISTRY}:v1.2", "tag 'v1.2' is a major or major.minor version"),
        ("docker.io/library/python:3.11-slim", "tag '3.11-slim' is a major or major.minor version"),
        (f"{REGISTRY}:gpu", "tag 'gpu' does not name one build"),
        (f"{REGISTRY}:abc123", "tag 'abc123' does not name one build"),  # 6 hex digits: too short for a commit
    ],
)
def test_refused_with_the_reason(ref: str, reason: str) -> None:
    with pytest.raises(ImageTagError) as caught:
        check_cluster_image_ref(ref)
    message = str(caught.value)
    assert message.startswith(f"image {ref!r} is not fit for a cluster: ")
    assert reason in message
    # What to do, in the same paragraph.
    assert "'europe-docker.pkg.dev/PROJECT/REPO/matta:0.1.0'" in message
    assert "@sha256:<64 hex>" in message
    assert "\n" not in message


def test_every_problem_of_a_name_is_named_at_once() -> None:
    with pytest.raises(ImageTagError) as caught:
        check_cluster_image_ref("matta")
    assert "names no registry host" in str(caught.value) and "; and it has no tag" in str(caught.value)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "image name is empty"),
        ("   ", "image name is empty"),
        (f"{REGISTRY}@sha256:abc", "the digest must be 'sha256:' and 64 lowercase hex digits"),
        ("europe-docker.pkg.dev/proj/Repo/matta:0.1.0", "'Repo' is not a valid repository name component"),
        (f"{REGISTRY}:-0.1.0", "is not a Docker tag"),
        ("bad_host:5000/matta:0.1.0", "is not a registry host[:port]"),
    ],
)
def test_malformed_names_are_refused_as_such(ref: str, message: str) -> None:
    with pytest.raises(ImageTagError) as caught:
        check_cluster_image_ref(ref)
    assert message in str(caught.value)
