"""`matta run --runner docker`: every task of the pipeline inside the project's image, through kfp.local's
DockerRunner, on this machine's engine (a Docker engine, else podman serving the Docker API for the run).

What a task in a container needs and how it gets it:
- **the image as built from this tree**: the image's ``io.matta.code-version`` label must equal the code version
  the pipeline hands its tasks, else nothing starts (each task checks again inside, `matta_core.image_identity`);
  the pipeline is compiled with the image's name exactly as the engine lists it (kfp.local pulls otherwise);
- **its inputs**: kfp.local mounts only the pipeline root. The run's local paths (data files, the data mirror, a
  local Teacher folder) are bind-mounted read-only at the same paths, the Teacher cache read-write; relative paths
  in the config are made absolute first;
- **write access as the image's non-root user** (uid 10001): the read-write folders get a POSIX ACL entry for
  that uid (``setfacl``, default entries included), so the caller's own permissions are left as they were and the
  caller can read everything the containers wrote;
- **MLflow**: a step in a container must not open the caller's sqlite file as another user; for the embedded
  store, a local ``mlflow server`` in front of that same database serves the run on 127.0.0.1 (containers share
  the host's network: podman's ``netns = "host"``, Docker's ``network_mode="host"``), as an MLflow server does on
  a cluster. A server URI is used as it is;
- **the environment**: ``MATTA_*`` variables (the data mirror), ``STORAGE_EMULATOR_HOST``, ``HF_*`` offline flags.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matta_core import storage
from matta_core.config import PipelineConfig
from matta_core.data import DATASETS
from matta_core.environment import environment
from matta_core.image import ImageBuildError
from matta_core.imagebuild.build import image_info
from matta_core.imagebuild.engine import Engine, docker_api, find_engine

CODE_VERSION_LABEL = "io.matta.code-version"
#: Variables a step may read, passed from the caller's environment into every container.
FORWARDED_PREFIXES = ("MATTA_",)
FORWARDED_NAMES = ("STORAGE_EMULATOR_HOST", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GOOGLE_CLOUD_PROJECT",
                   "OMP_NUM_THREADS", "TZ")


class ContainerRunError(RuntimeError):
    """The run cannot start in containers: no engine, no image, an image of other code, a path it cannot share."""


@dataclass(frozen=True)
class HostPath:
    """A folder of this machine that the tasks need, mounted at the same path."""

    path: Path
    writable: bool


@dataclass(frozen=True)
class ContainerRun:
    """What `docker_session` prepared: the kfp.local runner, the image name as listed, the config with absolute
    paths, and the tracking URI the tasks use."""

    runner: Any  # kfp.local.DockerRunner
    image: str
    config: PipelineConfig
    tracking_uri: str


def check_image(engine: Engine, name: str, code_version: str) -> tuple[str, str]:
    """The image's name as the engine lists it and its user; raise `ContainerRunError` unless it runs this code."""
    try:
        info = image_info(engine, name)
    except ImageBuildError:
        raise ContainerRunError(
            f"{engine.kind} has no image {name!r}: build it from this tree with `matta image build --tag {name}` "
            "(or pass --image with the name of one you built)"
        ) from None
    baked = info.labels.get(CODE_VERSION_LABEL)
    if not baked:
        raise ContainerRunError(
            f"image {info.name} does not contain matta as `matta image build` makes it (no {CODE_VERSION_LABEL} "
            "label): build the project's image with `matta image build` and pass its name with --image"
        )
    if baked != code_version:
        raise ContainerRunError(
            f"image {info.name} holds matta code version {baked}, but this tree's pipeline is code version "
            f"{code_version}: its tasks would run other code than the pipeline describes. Rebuild the image from "
            "this tree (`matta image build`), or run from the tree the image was built from"
        )
    return info.name, info.user


def absolute_local_paths(config: PipelineConfig) -> PipelineConfig:
    """The config with every local path absolute and resolved: a container's working folder is not the caller's,
    and a path through ``..`` or a symlink names nothing inside a container, where only the mounts exist."""

    def absolute(value: str | None) -> str | None:
        if value is None or not storage.is_local(value) or value in DATASETS:
            return value
        return str(Path(storage.to_local_path(value)).resolve())

    data = config.data.model_copy(update={"source": absolute(config.data.source),
                                          "test_source": absolute(config.data.test_source),
                                          "mirror_dir": absolute(config.data.mirror_dir)})
    spec = dict(config.teacher.spec)
    for key in ("model_path", "path"):
        if isinstance(spec.get(key), str) and not str(spec[key]).startswith("pkg:"):
            spec[key] = absolute(str(spec[key]))
    teacher = config.teacher.model_copy(update={"spec": spec})
    train = config.train.model_copy(update={"checkpoint_dir": absolute(config.train.checkpoint_dir)})
    return config.model_copy(update={"data": data, "teacher": teacher, "train": train,
                                     "cache_dir": absolute(config.cache_dir)})


def host_paths(config: PipelineConfig, environment: dict[str, str]) -> list[HostPath]:
    """The local folders the tasks read (read-only) and write (the Teacher cache, the training checkpoints), from
    an absolute config."""
    found: dict[Path, bool] = {}

    def add(value: str | None, writable: bool = False, folder: bool = False) -> None:
        if value is None or not storage.is_local(value) or value in DATASETS:
            return
        path = Path(storage.to_local_path(value)).resolve()
        if not folder and not path.is_dir():
            path = path.parent  # a file: its folder, so a sibling written later (a rerun's data) is seen too
        found[path] = found.get(path, False) or writable

    add(config.data.source)
    add(config.data.test_source)
    add(config.data.mirror_dir, folder=True)
    add(environment.get("MATTA_DATA_MIRROR"), folder=True)
    for key in ("model_path", "path"):
        value = config.teacher.spec.get(key)
        if isinstance(value, str) and not value.startswith("pkg:"):
            add(value)
    # Written by the tasks: the Teacher cache, and training checkpoints kept outside the task's output.
    for written in (config.cache_dir, config.train.checkpoint_dir):
        if written is not None and storage.is_local(written):
            folder = Path(storage.to_local_path(written)).resolve()
            folder.mkdir(parents=True, exist_ok=True)
            add(str(folder), writable=True, folder=True)
    # A folder inside another mounted one is covered by it, unless it needs write access the outer one lacks.
    kept: list[HostPath] = []
    for path, writable in sorted(found.items()):
        outer = next((p for p in kept if path.is_relative_to(p.path) and (p.writable or not writable)), None)
        if outer is None:
            kept.append(HostPath(path, writable))
    return kept


def forwarded_environment() -> dict[str, str]:
    """The caller's variables a step may read; the data mirror's path resolved, like the config's paths."""
    found = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIXES) or k in FORWARDED_NAMES}
    mirror = found.get("MATTA_DATA_MIRROR")
    if mirror and storage.is_local(mirror):
        found["MATTA_DATA_MIRROR"] = str(Path(storage.to_local_path(mirror)).resolve())
    return found


def grant_write(paths: list[Path], uid: int) -> None:
    """Let the image's user write `paths` (and what is created in them later) with POSIX ACL entries."""
    if uid == os.geteuid():
        return
    setfacl = shutil.which("setfacl")
    if setfacl is None:
        raise ContainerRunError(
            f"the containers run as uid {uid} and must write {', '.join(map(str, paths))}; granting that needs "
            "setfacl (Debian package `acl`, installed by scripts/container-engine.sh)"
        )
    for path in paths:
        done = subprocess.run([setfacl, "-R", "-m", f"u:{uid}:rwX,d:u:{uid}:rwX", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ContainerRunError(f"could not grant uid {uid} write access to {path}: {done.stderr.strip()}")


@contextlib.contextmanager
def docker_session(
    config: PipelineConfig, pipeline_root: Path, image: str, code_version: str, tracking_uri: str,
    *, engine: str | None = None,
) -> Iterator[ContainerRun]:
    """Everything a containerised run needs, for the duration of the block (Docker API, MLflow server)."""
    from docker.types import Mount
    from kfp import local

    try:
        chosen = find_engine(engine)
    except ImageBuildError as error:
        raise ContainerRunError(str(error)) from None
    listed, user = check_image(chosen, image, code_version)
    uid = int(user.split(":")[0]) if user.split(":")[0].isdigit() else 0
    config = absolute_local_paths(config)
    forwarded = forwarded_environment()
    paths = host_paths(config, forwarded)
    pipeline_root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        tracking_uri, artifact_dirs = stack.enter_context(_tracking_for_containers(tracking_uri, config.name,
                                                                                   pipeline_root.parent))
        paths += [HostPath(p, True) for p in artifact_dirs]
        grant_write([pipeline_root, *(p.path for p in paths if p.writable)], uid)
        mounts = [Mount(target=str(p.path), source=str(p.path), type="bind", read_only=not p.writable)
                  for p in paths]
        docker_host = stack.enter_context(docker_api(chosen))
        stack.enter_context(environment({"DOCKER_HOST": docker_host}))
        stack.enter_context(_exit_status_kept())
        runner = local.DockerRunner(mounts=mounts, network_mode="host", environment=forwarded)
        yield ContainerRun(runner=runner, image=listed, config=config, tracking_uri=tracking_uri)


@contextlib.contextmanager
def _tracking_for_containers(tracking_uri: str, experiment: str, out: Path) -> Iterator[tuple[str, list[Path]]]:
    """The URI the tasks use and the artifact folders they write directly (an older experiment's file store)."""
    from matta_core.tracking.local_server import serving
    from matta_core.tracking.uri import sqlite_path

    if not tracking_uri:
        yield "", []
        return
    db = sqlite_path(tracking_uri)
    if db is None:
        yield tracking_uri, []
        return
    artifacts = db.parent / "mlartifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    with serving(tracking_uri, artifacts, out / "mlflow-server.log") as server:
        from mlflow import MlflowClient

        found = MlflowClient(server.uri).get_experiment_by_name(experiment)
        direct = []
        if found is not None and str(found.artifact_location).startswith("file:"):
            # Created by an earlier run on this machine: its runs' artifacts are written straight to that folder.
            direct.append(Path(storage.to_local_path(str(found.artifact_location))))
            direct[-1].mkdir(parents=True, exist_ok=True)
        yield server.uri, direct


@contextlib.contextmanager
def _exit_status_kept() -> Iterator[None]:
    """kfp.local 2.17.3 starts every task container with ``auto_remove=True`` and, when the engine has already
    removed a container by the time it asks for the exit status, *assumes success*
    (``kfp/local/docker_task_handler.py``, ``run_docker_container``). A task that fails within a second (a
    refused image, an import error) would then be reported SUCCESS and the run would die later, in an unrelated
    task, with a confusing error. For the duration of a run, task containers are removed only after their exit
    status has been read."""
    from kfp.local import docker_task_handler

    original = docker_task_handler.run_docker_container
    docker_task_handler.run_docker_container = run_task_container
    try:
        yield
    finally:
        docker_task_handler.run_docker_container = original


def run_task_container(client: Any, image: str, command: list[str], volumes: dict[str, Any],
                       **container_run_args: Any) -> int:
    """Run one task's container (the image must be present), stream its log, and return its real exit status."""
    from docker.errors import APIError

    container_run_args.pop("auto_remove", None)
    if not any(image in (found.tags + found.attrs.get("RepoDigests", [])) for found in client.images.list()):
        raise ContainerRunError(f"image {image!r} is not in the engine's image store (it was there when the run "
                                "started): was it removed meanwhile?")
    container = client.containers.run(image=image, command=command, detach=True, stdout=True, stderr=True,
                                      volumes=volumes, auto_remove=False, **container_run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        with contextlib.suppress(APIError):
            container.remove(force=True)


def compiled_for_image(image: str, package: Path | None = None) -> Any:
    """The pipeline (or the compiled `package`) with every task's image set to `image`, loaded for kfp.local."""
    from kfp import components

    from pipelines.compile import compile_pipeline, set_pipeline_image

    with tempfile.TemporaryDirectory(prefix="matta-pipeline-") as tmp:
        target = Path(tmp) / "pipeline.yaml"
        if package is not None:
            shutil.copyfile(package, target)
            set_pipeline_image(target, image)
        else:
            compile_pipeline(target, image=image)
        return components.load_component_from_file(str(target))
