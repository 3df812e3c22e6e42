"""`matta image build` before any engine is asked: names KFP can cache on, variants (the mlflow-server image
included), the labels' inputs.

The builds themselves run for real in tests/containers (podman or Docker, whichever the machine has).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.image import (
    REPO_ROOT,
    ImageBuildError,
    ImageTagError,
    check_image_ref,
    default_image_tag,
    default_mlflow_server_tag,
)
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


# --- the mlflow-server variant (docker/mlflow-server: a service image, its own folder as the build context) ----


def test_mlflow_server_tag_is_the_dockerfiles_mlflow_pin() -> None:
    import tomllib

    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (project_mlflow,) = [d for d in extras["local"] if d.startswith("mlflow==")]
    assert default_mlflow_server_tag() == f"mlflow-server:{project_mlflow.split('==')[1]}"
    assert check_image_ref(default_mlflow_server_tag())


def test_mlflow_server_tag_needs_exactly_one_pin(tmp_path: Path) -> None:
    (tmp_path / "docker" / "mlflow-server").mkdir(parents=True)
    dockerfile = tmp_path / "docker" / "mlflow-server" / "Dockerfile"
    dockerfile.write_text("FROM python:3.11.15-slim-bookworm\nRUN pip install mlflow\n")
    with pytest.raises(ImageBuildError, match=r"must pin MLflow exactly once.*found none"):
        default_mlflow_server_tag(tmp_path)
    dockerfile.write_text('RUN pip install "mlflow[auth]==3.17.2"\n')
    assert default_mlflow_server_tag(tmp_path) == "mlflow-server:3.17.2"


def test_service_images_take_no_code_version_and_the_project_image_needs_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="service image takes none"):
        build("mlflow-server:3.17.2", code_version="0.1.0+src.0", variant="mlflow-server", engine=NOWHERE)
    with pytest.raises(ValueError, match="project image needs one"):
        build("matta:0.1.0", code_version=None, engine=NOWHERE)
    with pytest.raises(ImageBuildError, match=re.escape(f"no docker/mlflow-server/Dockerfile under {tmp_path}")):
        build("mlflow-server:3.17.2", code_version=None, variant="mlflow-server", context=tmp_path, engine=NOWHERE)


def test_mlflow_server_builds_from_its_own_folder_with_the_same_machinery(tmp_path: Path) -> None:
    """What `podman build` is handed, recorded by a stand-in for the engine's client."""
    log = tmp_path / "calls.log"
    cli = tmp_path / "podman"
    cli.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n'
                   'if [ "$1 $2" = "image inspect" ]; then\n'
                   '  echo \'[{"Id": "sha256:ab12", "RepoTags": ["localhost/mlflow-server:3.17.2"], "Size": 5}]\'\n'
                   'fi\n')
    cli.chmod(0o755)
    built = build("mlflow-server:3.17.2", code_version=None, variant="mlflow-server", engine=Engine("podman", str(cli)),
                  base="localhost/debian-python:3.11-bookworm", host_inputs_mode="off", quiet=True)
    assert (built.name, built.code_version) == ("localhost/mlflow-server:3.17.2", None)
    calls = log.read_text().splitlines()
    (command,) = [c.split() for c in calls if c.startswith("build ")]
    context = REPO_ROOT / "docker" / "mlflow-server"
    assert command[-1] == str(context)  # only the folder is sent: no part of the checkout reaches the engine
    assert command[command.index("-f") + 1] == str(context / "Dockerfile")
    staging = command[command.index("-t") + 1]
    assert staging.startswith("mlflow-server:building-")  # renamed only once the build succeeded
    args = {a.split("=", 1)[0] for i, a in enumerate(command) if command[i - 1] == "--build-arg"}
    assert {"PYTHON_IMAGE", "CREATED"} <= args and not args & {"CODE_VERSION", "VERSION", "TORCH_INDEX_URL"}
    assert f"tag {staging} mlflow-server:3.17.2" in calls and f"rmi {staging}" in calls


def test_cli_refuses_gpu_with_mlflow_server() -> None:
    result = CliRunner().invoke(app, ["image", "build", "--gpu", "--mlflow-server"])
    assert result.exit_code == 2 and "--gpu and --mlflow-server name two different images" in result.output
