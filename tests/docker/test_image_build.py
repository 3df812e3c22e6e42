"""`matta image build` before any engine is asked: names KFP can cache on, variants, the labels' inputs.

The builds themselves run for real in tests/containers (podman or Docker, whichever the machine has).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.image import ImageBuildError, ImageTagError, check_image_ref, default_image_tag
from matta_core.imagebuild.build import build, build_labels
from matta_core.imagebuild.engine import Engine

NOWHERE = Engine("podman", "/nonexistent/podman")  # any use of it would fail: the checks must come first


@pytest.mark.parametrize(
    "tag", ["matta", "matta:latest", "registry.example.com:5000/team/matta", "eu.gcr.io/p/matta:LATEST"]
)
def test_moving_tags_are_refused_before_any_engine_is_asked(tag: str) -> None:
    with pytest.raises(ImageTagError, match=r"latest.*moves with every build.*KFP"):
        build(tag, code_version="0.1.0+src.0", engine=NOWHERE)


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("matta@sha256:" + "0" * 64, "a build is named by a tag"),
        ("Matta:1.0", "not a valid repository name component"),
        ("matta:-rc1", "is not a Docker tag"),
        ("", "image name is empty"),
    ],
)
def test_malformed_build_names_are_refused(tag: str, message: str) -> None:
    with pytest.raises(ImageTagError, match=message):
        build(tag, code_version="0.1.0+src.0", engine=NOWHERE)


@pytest.mark.parametrize(
    "ref",
    ["matta:0.1.0", "localhost:5000/matta:0.1.0-gpu", "europe-docker.pkg.dev/p/r/matta:0.1.0",
     "matta@sha256:" + "a" * 64],
)
def test_versioned_and_digest_refs_are_accepted(ref: str) -> None:
    assert check_image_ref(ref) == ref


def test_unknown_variant_and_missing_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(ImageTagError, match="variant 'tpu' is not one of"):
        build("matta:0.1.0", code_version="x", variant="tpu", engine=NOWHERE)  # type: ignore[arg-type]
    with pytest.raises(ImageBuildError, match=re.escape(f"no docker/Dockerfile.gpu under {tmp_path}")):
        build("matta:0.1.0", code_version="x", variant="gpu", context=tmp_path, engine=NOWHERE)


def test_default_image_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATTA_IMAGE", raising=False)
    assert default_image_tag() == f"matta:{metadata.version('matta')}"
    pinned = "europe-docker.pkg.dev/p/r/matta@sha256:" + "e" * 64
    monkeypatch.setenv("MATTA_IMAGE", f"  {pinned} ")
    assert default_image_tag() == pinned
    monkeypatch.setenv("MATTA_IMAGE", "europe-docker.pkg.dev/p/r/matta:latest")
    with pytest.raises(ImageTagError, match=r"^MATTA_IMAGE: .*latest"):
        default_image_tag()


def test_labels_name_the_tree_and_never_a_credential(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "matta"\nversion = "9.8.7"\n')
    (tmp_path / "matta_core").mkdir()
    (tmp_path / "matta_core" / "a.py").write_text("x = 1\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://user:s3cret@example.com/org/matta.git"], check=True)
    labels = build_labels(tmp_path)
    assert labels["VERSION"] == "9.8.7" and re.fullmatch(r"[0-9a-f]{40}", labels["REVISION"])
    assert labels["SOURCE_URL"] == "https://example.com/org/matta.git"
    (tmp_path / "matta_core" / "a.py").write_text("x = 2\n")
    assert build_labels(tmp_path)["REVISION"].endswith("-dirty")


def test_cli_refuses_a_moving_tag_before_building() -> None:
    result = CliRunner().invoke(app, ["image", "build", "--tag", "matta:latest"])
    assert result.exit_code == 2, result.output
    assert "uses ':latest'" in result.output


def test_cli_refuses_unknown_host_inputs_mode() -> None:
    result = CliRunner().invoke(app, ["image", "build", "--host-inputs", "sometimes"])
    assert result.exit_code == 2 and "--host-inputs 'sometimes' is not one of" in result.output
