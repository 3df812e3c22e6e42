"""``matta compile``: write the pipeline as KFP YAML and check it strictly, without a cluster.

`validate_pipeline_yaml` parses the YAML into the ``PipelineSpec`` protobuf with
``json_format.ParseDict(..., ignore_unknown_fields=False)`` (a misspelt or misplaced field fails, as it would when
the KFP API server parses it), parses the deployment section (a ``Struct`` inside ``PipelineSpec``) strictly as
a ``PipelineDeploymentConfig``, and any further document as a ``PlatformSpec``; then checks the references between
sections and that every image is one the cluster's cache can trust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from kfp import compiler
from kfp.pipeline_spec import pipeline_spec_pb2

from matta_core.image import ImageTagError, check_image_ref


class PipelineSpecError(ValueError):
    """A compiled pipeline YAML that a KFP cluster would reject (or cache wrongly); the message says where."""


def compile_pipeline(output: str | Path, pipeline: Any = None) -> pipeline_spec_pb2.PipelineSpec:
    """Compile `pipeline` (default: `matta_pipeline`) to `output`, validate it, and return the parsed spec."""
    if pipeline is None:
        from pipelines.matta_pipeline import matta_pipeline as pipeline
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(output))
    return validate_pipeline_yaml(output)


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
