"""The project's image, built for real once per test session with this machine's engine (`matta image build`).

The first test that asks for `image` pays for the build (cold on a fresh machine: a Debian base by debootstrap
and every dependency, ~6-7 minutes; seconds when the engine's layer cache has it). Needs a container engine:
`bash scripts/container-engine.sh` (CI runs it) installs podman where no Docker engine answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from matta_core.imagebuild.engine import Engine, find_engine
from pipelines.code_version import code_version
from tests.mlflow_server import clean_mlflow_state, mlflow_server  # noqa: F401  (registers the fixtures)

REPO = Path(__file__).resolve().parents[2]
MATTA = Path(sys.executable).parent / "matta"
#: A tag of its own, so the tests never replace an image a developer built under the default name.
TEST_IMAGE = "matta-test:ci"


@dataclass(frozen=True)
class BuiltImage:
    name: str  # as the engine lists it
    engine: Engine
    build_output: str


def engine_or_fail() -> Engine:
    try:
        return find_engine()
    except Exception as error:  # the container tests are part of the suite: no engine is a failure, not a skip
        pytest.fail(f"no container engine for the container tests ({error}); run bash scripts/container-engine.sh")


@pytest.fixture(scope="session")
def engine() -> Engine:
    return engine_or_fail()


@pytest.fixture(scope="session")
def image(engine: Engine) -> BuiltImage:
    done = subprocess.run([str(MATTA), "image", "build", "--tag", TEST_IMAGE, "--quiet"], capture_output=True,
                          text=True, cwd=REPO, timeout=1800)
    assert done.returncode == 0, f"matta image build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    listed = engine.run("image", "inspect", "--format", "{{index .RepoTags 0}}", TEST_IMAGE).stdout.strip()
    return BuiltImage(listed, engine, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def tree_code_version() -> str:
    return code_version()


@pytest.fixture
def in_image(image: BuiltImage) -> Iterator[callable]:  # type: ignore[valid-type]
    """Run a command in the image (as its own user, host network) and return the completed process."""

    def run(*command: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return subprocess.run(image.engine.command("run", "--rm", "--network", "host", *flags, image.name, *command),
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **image.engine.env})

    yield run
