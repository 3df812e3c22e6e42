"""What goes wrong around images gets one clear paragraph and exit code 2, and leaves nothing half-built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from matta_core.imagebuild.base import LOCAL_BASE
from tests.containers.conftest import MATTA, REPO, BuiltImage
from tests.kfp.helpers import small_config, write_config

pytestmark = [pytest.mark.slow, pytest.mark.container]


def matta(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 900) -> (
        subprocess.CompletedProcess):
    return subprocess.run([str(MATTA), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **(env or {})})


def bin_folder_with(tmp_path: Path, *tools: str) -> str:
    """A PATH holding only python, matta and `tools`: what a machine without (some) engines has."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("python", "python3", "matta"):
        (folder / tool).symlink_to(Path(sys.executable).parent / tool if tool == "matta" else sys.executable)
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    return str(folder)


def test_no_engine_at_all(tmp_path: Path) -> None:
    done = matta("image", "build", env={"PATH": bin_folder_with(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert "no container engine found on this machine (neither docker nor podman is on PATH)" in done.stderr
    assert "scripts/container-engine.sh" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client (an engine need not run)")
def test_docker_client_without_a_running_engine(tmp_path: Path) -> None:
    env = {"PATH": bin_folder_with(tmp_path, "docker"), "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"}
    done = matta("image", "build", env=env)
    assert done.returncode == 2, done.stderr
    assert "no container engine is running: the docker client is installed" in done.stderr
    assert "Start the Docker daemon" in done.stderr and "Traceback" not in done.stderr
    done = matta("image", "build", "--engine", "docker", env=env)
    assert done.returncode == 2 and "no Docker engine answers" in done.stderr, done.stderr


def test_a_failing_run_step_shows_the_step_and_tags_nothing(image: BuiltImage, tmp_path: Path) -> None:
    context = tmp_path / "checkout"
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy(REPO / name, context / name) if context.exists() else (context.mkdir(), shutil.copy(
            REPO / name, context / name))
    for folder in ("matta_core", "components", "pipelines", "docker"):
        shutil.copytree(REPO / folder, context / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dockerfile = context / "docker" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(
        "COPY matta_core ./matta_core\n",
        "COPY matta_core ./matta_core\nRUN echo 'broken on purpose: 42 left' && exit 3\n", 1))
    done = matta("image", "build", "--tag", "matta-broken:0.0.1", "--context", str(context), "--quiet")
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the build of matta-broken:0.0.1 failed" in done.stderr
    assert "broken on purpose: 42 left" in done.stderr  # the failing step's own last lines
    assert "exit 3" in done.stderr and "Nothing was tagged" in done.stderr and "Traceback" not in done.stderr
    listed = image.engine.run("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert "matta-broken" not in listed


def test_an_image_without_matta_is_refused_before_anything_runs(image: BuiltImage, tmp_path: Path) -> None:
    config = write_config(tmp_path / "run.yaml", small_config(tmp_path, tmp_path / "cache"))
    done = matta("run", "--config", str(config), "--runner", "docker", "--image", LOCAL_BASE)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"image {LOCAL_BASE} does not contain matta" in done.stderr and "matta image build" in done.stderr
    assert not (tmp_path / "run" / "kfp").exists() or not any((tmp_path / "run" / "kfp").iterdir())


def test_an_image_of_other_code_is_refused_naming_both_versions(image: BuiltImage, tmp_path: Path,
                                                                 tree_code_version: str) -> None:
    stale_version = "0.1.0+src.0123456789abcdef"
    (tmp_path / "Dockerfile").write_text(f"FROM {image.name}\nLABEL io.matta.code-version={stale_version}\n")
    image.engine.run("build", "-t", "matta-stale:0.0.1", str(tmp_path), timeout=300)
    try:
        config = write_config(tmp_path / "run.yaml", small_config(tmp_path, tmp_path / "cache"))
        done = matta("run", "--config", str(config), "--runner", "docker", "--image", "matta-stale:0.0.1")
        assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
        assert stale_version in done.stderr and tree_code_version in done.stderr
        assert "Rebuild the image from this tree" in done.stderr
    finally:
        image.engine.run("rmi", "matta-stale:0.0.1", check=False)


@pytest.mark.timeout(900)
def test_a_task_in_an_image_of_other_code_refuses_to_run(image: BuiltImage, tmp_path: Path,
                                                         tree_code_version: str) -> None:
    """The label can be right while the code inside is not (a re-tagged image): every task checks for itself."""
    stale_version = "0.1.0+src.fedcba9876543210"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {image.name}\nUSER 0\n"
        f"RUN printf '{{\"code_version\": \"{stale_version}\"}}' > /etc/matta/image.json\nUSER 10001:10001\n")
    image.engine.run("build", "-t", "matta-relabelled:0.0.1", str(tmp_path), timeout=300)
    try:
        config = write_config(tmp_path / "run.yaml", small_config(tmp_path, tmp_path / "cache"))
        done = matta("run", "--config", str(config), "--runner", "docker", "--image", "matta-relabelled:0.0.1",
                     "--no-tracking")
        assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
        output = done.stdout + done.stderr
        assert stale_version in output and tree_code_version in output
    finally:
        image.engine.run("rmi", "matta-relabelled:0.0.1", check=False)
