"""`matta run`, `matta compile` and `matta submit`: the Kubeflow pipeline locally, as YAML, and on a cluster.

The pipeline code lives in the repository's top-level `pipelines` and `components` packages; they are imported
inside the commands so that `matta demo` and the other commands work without them.
Exit codes: 0 done, 1 a step failed, 2 the run could not start (bad config, missing data, unreachable store/host).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from matta_core.cli.app import app
from matta_core.cli.common import ConfigOption, SetOption, load_config


@app.command()
def run(
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006 - typer reads the default, it is never mutated
    tracking: Annotated[bool, typer.Option(help="Record the run in MLflow (tracking_uri, default "
                                                "<output_dir>/mlflow.db).")] = True,
    cache: Annotated[bool, typer.Option(help="Use kfp.local's step cache under <output_dir>/kfp (keys include the "
                                             "code version).")] = False,
    package: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="Run this compiled pipeline YAML (from `matta compile`) instead of the pipeline in the source tree.",
    )] = None,
) -> None:
    """Run the whole Kubeflow pipeline on this machine through kfp.local (one process per step)."""
    from matta_core.config import ConfigError
    from pipelines.local_runner import PipelineFailed, run_pipeline
    from pipelines.preflight import PreflightError

    run_config = load_config(config, set_)
    try:
        pipeline = None if package is None else _load_package(package)
        result = run_pipeline(run_config, track=tracking, enable_caching=cache, pipeline=pipeline)
    except (ConfigError, PreflightError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except PipelineFailed as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"\npipeline finished in {result.seconds:.1f} s")
    for line in result.where_to_look():
        typer.echo(line)


def _load_package(package: Path) -> Any:
    """A compiled pipeline YAML as a callable pipeline, after the same strict check `matta compile` makes."""
    from kfp import components

    from pipelines.compile import PipelineSpecError, validate_pipeline_yaml

    try:
        validate_pipeline_yaml(package)
    except PipelineSpecError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    return components.load_component_from_file(str(package))


@app.command("compile")
def compile_(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the pipeline YAML.")] = Path(
        "pipeline.yaml"),
) -> None:
    """Compile the pipeline to KFP YAML and validate it strictly against the pipeline-spec schema."""
    from pipelines.code_version import code_version
    from pipelines.compile import PipelineSpecError, compile_pipeline

    try:
        spec = compile_pipeline(output)
    except PipelineSpecError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {output}: pipeline {spec.pipeline_info.name!r}, {len(spec.components)} components, "
               f"code version {code_version()}; validated against the pipeline-spec schema")


@app.command()
def submit(
    host: Annotated[str, typer.Option("--host", help="KFP API/UI URL, e.g. http://localhost:8080.")],
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006
    experiment: Annotated[str | None, typer.Option(help="KFP experiment (default: the config's name).")] = None,
    run_name: Annotated[str | None, typer.Option(help="KFP run name (default: <name>-<UTC time>).")] = None,
    cache: Annotated[bool | None, typer.Option(help="Override the cluster's step caching for this run.")] = None,
) -> None:
    """Compile, validate and submit the pipeline to a KFP cluster with the config's values as parameters."""
    from matta_core.config import ConfigError
    from pipelines.preflight import PreflightError
    from pipelines.submit import submit_pipeline

    run_config = load_config(config, set_)
    try:
        done = submit_pipeline(run_config, host, experiment=experiment, run_name=run_name, enable_caching=cache)
    except (ConfigError, PreflightError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"submitted: KFP run {done.kfp_run_id}\n  {done.kfp_run_url}")
    if done.mlflow_run_id:
        typer.echo(f"MLflow: parent run {done.mlflow_run_id} in {done.tracking_uri}")
