"""``matta compile``: write the pipeline as KFP YAML and check it strictly, without a cluster.

`validate_pipeline_yaml` parses the YAML into the ``PipelineSpec`` protobuf with
``json_format.ParseDict(..., ignore_unknown_fields=False)`` (a misspelt or misplaced field fails, as it would when
the KFP API server parses it), parses the deployment section (a ``Struct`` inside ``PipelineSpec``) strictly as
a ``PipelineDeploymentConfig``, and any further document as a ``PlatformSpec``; then checks the references between
sections and that every image is one the cluster's cache can trust.

The image: every component is declared with ``base_image=default_image_tag()`` (``$MATTA_IMAGE`` or
``matta:<version>``); `compile_pipeline(..., image=NAME)` rewrites every task's image in the compiled spec to
``NAME`` (`set_pipeline_image`). That step checks only what any run needs (a tag, not ``:latest``): a local run
may name ``localhost/matta:0.1.0``. What a cluster can pull is checked by the cluster paths, ``matta compile`` and
``matta submit``, through `cluster_image`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from kfp import compiler
from kfp.pipeline_spec import pipeline_spec_pb2

from matta_core.image import IMAGE_ENV, ImageTagError, check_cluster_image_ref, check_image_ref, default_image_tag


class PipelineSpecError(ValueError):
    """A compiled pipeline YAML that a KFP cluster would reject (or cache wrongly); the message says where."""


def compile_pipeline(
    output: str | Path, pipeline: Any = None, *, image: str | None = None
) -> pipeline_spec_pb2.PipelineSpec:
    """Compile `pipeline` (default: `matta_pipeline`) to `output`, validate it, and return the parsed spec.

    `image`: the container image of every task (default: the components' own, ``default_image_tag()``). It is
    checked with `check_image_ref` only (a tag, not ``:latest``); check it with `cluster_image` first when the
    YAML is meant for a cluster. `output` is written only once the YAML has passed validation: a refused image
    or an invalid spec leaves an existing file there untouched.
    """
    if image is not None:
        image = check_image_ref(image)
    if pipeline is None:
        from pipelines.matta_pipeline import matta_pipeline as pipeline
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the output (same file system, so the final rename is atomic); kfp picks the format by the
    # suffix, so the staged file keeps the output's. Written by kfp's open(): the usual file mode.
    staged = output.with_name(f".{output.stem}.{uuid.uuid4().hex[:12]}{output.suffix}")
    try:
        compiler.Compiler().compile(pipeline, str(staged))
        if image is not None:
            set_pipeline_image(staged, image)
        spec = validate_pipeline_yaml(staged)
        os.replace(staged, output)
    finally:
        staged.unlink(missing_ok=True)
    return spec


def set_pipeline_image(path: str | Path, image: str) -> int:
    """Set the container image of every task in the compiled pipeline YAML at `path`; return how many executors.

    Rewrites ``deploymentSpec.executors.<label>.container.image`` in place, keeping kfp's header comment and its
    key order (kfp writes ``yaml.dump_all(..., sort_keys=True)``). Checks `image` with `check_image_ref` only;
    raises `PipelineSpecError` if the YAML has no container executor to set.
    """
    path = Path(path)
    image = check_image_ref(image)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    header_end = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise PipelineSpecError(f"{path}: cannot read it as YAML: {error}") from None
    executors = docs[0].get("deploymentSpec", {}).get("executors", {}) if docs and isinstance(docs[0], dict) else {}
    containers = [e["container"] for e in executors.values() if isinstance(e, dict) and "container" in e]
    if not containers:
        raise PipelineSpecError(f"{path}: deploymentSpec.executors has no container executor whose image to set")
    for container in containers:
        container["image"] = image
    path.write_text("".join(lines[:header_end]) + yaml.safe_dump_all(docs, sort_keys=True))
    return len(containers)


def cluster_image(image: str | None = None) -> str:
    """The image for a pipeline that runs on a cluster: `image` (``--image``), else ``default_image_tag()``.

    Raises `ImageTagError` when `check_cluster_image_ref` refuses it, saying where the name came from and how to
    give another. The default, ``matta:<version>`` when ``$MATTA_IMAGE`` is unset, names no registry and is
    always refused here: a cluster needs the registry copy (``matta image build --tag REGISTRY/PATH/matta:VERSION
    --push``).
    """
    if image is not None:
        source = "--image"
    elif os.environ.get(IMAGE_ENV, "").strip():
        source = IMAGE_ENV
    else:
        source = f"the default image (no --image given, {IMAGE_ENV} unset)"
    try:
        name = image if image is not None else default_image_tag()
        return check_cluster_image_ref(name)
    except ImageTagError as error:
        detail = str(error).removeprefix(f"{IMAGE_ENV}: ")
        raise ImageTagError(
            f"{source}: {detail}. Push the image to your registry (matta image build --tag "
            f"REGISTRY/PATH/matta:VERSION --push) and pass --image REGISTRY/PATH/matta:VERSION (or @sha256:...), or "
            f"set {IMAGE_ENV} to it"
        ) from None


def validate_pipeline_yaml(path: str | Path) -> pipeline_spec_pb2.PipelineSpec:
    """Parse and check a compiled pipeline YAML strictly; raise `PipelineSpecError` naming the problem."""
    path = Path(path)
    try:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except (OSError, yaml.YAMLError) as error:
        raise PipelineSpecError(f"{path}: cannot read it as YAML: {error}") from None
    if not docs or not isinstance(docs[0], dict):
        raise PipelineSpecError(f"{path}: no pipeline spec document in it")
    spec = _parse(docs[0], pipeline_spec_pb2.PipelineSpec(), f"{path} (document 1, PipelineSpec)")
    for i, doc in enumerate(docs[1:], start=2):
        _parse(doc, pipeline_spec_pb2.PlatformSpec(), f"{path} (document {i}, PlatformSpec)")
    deployment = _parse(docs[0].get("deploymentSpec", {}), pipeline_spec_pb2.PipelineDeploymentConfig(),
                        f"{path}: deploymentSpec")
    _check_references(spec, deployment, path)
    return spec


def _parse(doc: Any, message: Any, where: str) -> Any:
    try:
        return json_format.ParseDict(doc, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise PipelineSpecError(f"{where} does not match the KFP pipeline-spec schema: {error}") from None


def _check_references(
    spec: pipeline_spec_pb2.PipelineSpec, deployment: pipeline_spec_pb2.PipelineDeploymentConfig, path: Path
) -> None:
    if not spec.pipeline_info.name:
        raise PipelineSpecError(f"{path}: pipelineInfo.name is empty")
    if not spec.schema_version:
        raise PipelineSpecError(f"{path}: schemaVersion is empty")
    dags = {"root": spec.root, **dict(spec.components)}
    for owner, component in dags.items():
        if component.WhichOneof("implementation") == "executor_label":
            if component.executor_label not in deployment.executors:
                raise PipelineSpecError(f"{path}: component {owner!r} names executor {component.executor_label!r}, "
                                        "which deploymentSpec.executors lacks")
            continue
        for task_name, task in component.dag.tasks.items():
            if task.component_ref.name not in spec.components:
                raise PipelineSpecError(f"{path}: task {task_name!r} in {owner!r} refers to component "
                                        f"{task.component_ref.name!r}, which is not defined")
            for upstream in task.dependent_tasks:
                if upstream not in component.dag.tasks:
                    raise PipelineSpecError(f"{path}: task {task_name!r} depends on unknown task {upstream!r}")
    for label, executor in deployment.executors.items():
        if executor.WhichOneof("spec") == "container":
            try:
                check_image_ref(executor.container.image)
            except ImageTagError as error:
                raise PipelineSpecError(f"{path}: executor {label!r}: {error}") from None
