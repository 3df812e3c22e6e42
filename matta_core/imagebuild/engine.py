"""Which container engine builds and runs the image: a Docker engine that answers, else podman.

Podman is configured only through ``CONTAINERS_CONF`` / ``CONTAINERS_STORAGE_CONF`` pointing at files this
package owns (``podman/``), rendered into a state folder (``$MATTA_PODMAN_STATE``, default
``~/.cache/matta/podman``) that also holds podman's image storage. The system's containers configuration is never
read or changed. ``bash scripts/container-engine.sh`` installs podman where neither engine is present.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from matta_core.image import ImageBuildError
from matta_core.processes import stop_process_group

STATE_ENV = "MATTA_PODMAN_STATE"
INSTALL_HINT = "install one (Docker, or podman: `bash scripts/container-engine.sh`, which uses apt-get)"


@dataclass(frozen=True)
class Engine:
    """A container engine's command-line client and the environment its commands need."""

    kind: str  # "docker" | "podman"
    cli: str
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [self.cli, *args]

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one engine command; a failure raises :class:`ImageBuildError` with the engine's own words."""
        try:
            done = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, **self.env})
        except subprocess.TimeoutExpired:
            raise ImageBuildError(f"`{self.kind} {' '.join(args)}` did not answer within {timeout:g} s") from None
        if check and done.returncode != 0:
            raise ImageBuildError(f"`{self.kind} {' '.join(args)}` failed: {_tail(done.stderr or done.stdout)}")
        return done


def find_engine(prefer: str | None = None) -> Engine:
    """The engine to use: ``prefer`` ("docker" / "podman") if given, else a Docker engine that answers, else podman.

    Raises :class:`ImageBuildError` naming what was found: no engine at all, or a Docker client whose engine is
    not running (and no podman to fall back on).
    """
    if prefer not in (None, "docker", "podman"):
        raise ImageBuildError(f"engine {prefer!r} is not one of: docker, podman")
    docker_cli = shutil.which("docker")
    podman_cli = shutil.which("podman")
    docker_problem = ""
    if prefer in (None, "docker") and docker_cli:
        docker_problem = _docker_engine_problem(docker_cli)
        if not docker_problem:
            return Engine("docker", docker_cli)
        if prefer == "docker":
            raise ImageBuildError(
                f"the docker client is installed ({docker_cli}) but no Docker engine answers: {docker_problem}. "
                "Start the Docker daemon (or set DOCKER_HOST), or build with podman (--engine podman)."
            )
    if prefer in (None, "podman") and podman_cli:
        return Engine("podman", podman_cli, podman_environment())
    if docker_cli:
        raise ImageBuildError(
            f"no container engine is running: the docker client is installed ({docker_cli}) but its engine does "
            f"not answer ({docker_problem}), and podman is not installed. Start the Docker daemon, or {INSTALL_HINT}."
        )
    if prefer == "podman":
        raise ImageBuildError(f"podman is not installed: {INSTALL_HINT}")
    raise ImageBuildError(f"no container engine found on this machine (neither docker nor podman is on PATH): "
                          f"{INSTALL_HINT}")


def _docker_engine_problem(cli: str) -> str:
    """'' when a real Docker engine answers; else why not. Podman's Docker API does not count as one: it cannot
    mount build-time inputs, so podman is then driven directly."""
    try:
        done = subprocess.run([cli, "version", "--format", "{{json .Server}}"], capture_output=True, text=True,
                              timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return _tail(done.stderr or done.stdout, 1)
    if "podman" in done.stdout.lower():
        return "the engine behind DOCKER_HOST is podman's Docker API"
    return ""


# --- podman -------------------------------------------------------------------------------------------------


def podman_state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or Path.home() / ".cache" / "matta" / "podman").absolute()


def podman_environment(state: Path | None = None) -> dict[str, str]:
    """Render the project's podman settings into ``state`` and return the variables that select them."""
    state = state or podman_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    templates = resources.files("matta_core.imagebuild") / "podman"
    containers_conf = state / "containers.conf"
    storage_conf = state / "storage.conf"
    _write_if_changed(containers_conf, (templates / "containers.conf").read_text())
    _write_if_changed(storage_conf, (templates / "storage.conf.in").read_text().replace("@STATE@", str(state)))
    return {"CONTAINERS_CONF": str(containers_conf), "CONTAINERS_STORAGE_CONF": str(storage_conf)}


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)


@contextlib.contextmanager
def docker_api(engine: Engine) -> Iterator[str]:
    """A ``DOCKER_HOST`` value for clients of the Docker Engine API (the docker SDK, kfp.local's DockerRunner).

    A Docker engine already serves it. For podman, ``podman system service`` is started on a socket in the state
    folder for the duration of the block and stopped (by its PID) afterwards.
    """
    if engine.kind == "docker":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    state = podman_state_dir()
    socket = state / f"api-{os.getpid()}.sock"
    socket.unlink(missing_ok=True)
    log = (state / f"api-{os.getpid()}.log").open("w")
    service = subprocess.Popen(engine.command("system", "service", "--time=0", f"unix://{socket}"),
                               env={**os.environ, **engine.env}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise ImageBuildError(f"podman's Docker API did not start on {socket}: "
                                      f"{_tail(Path(log.name).read_text())}")
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        stop_process_group(service, grace_s=20)
        log.close()
        socket.unlink(missing_ok=True)


def _tail(text: str, lines: int = 5) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(no output)"
