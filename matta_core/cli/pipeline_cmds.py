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
from matta_core.cli.errors import fail


@app.command()
def run(
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006 - typer reads the default, it is never mutated
    tracking: Annotated[bool, typer.Option(help="Record the run in MLflow (tracking_uri, default "
                                                "<output_dir>/mlflow.db).")] = True,
    cache: Annotated[bool, typer.Option(
        help="kfp.local's step cache under <output_dir>/kfp (keys: every input and the code version): a rerun "
             "reuses the steps whose inputs did not change, and resumes an unfinished run; --no-cache runs every "
             "step.")] = True,
    package: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="Run this compiled pipeline YAML (from `matta compile`) instead of the pipeline in the source tree.",
    )] = None,
    runner: Annotated[str, typer.Option(
        help="subprocess: each task a process in this environment; docker: each task in the project's image "
             "(`matta image build`) on this machine's engine (Docker, else podman).")] = "subprocess",
    image: Annotated[str | None, typer.Option(
        help="With --runner docker: the image to run (default: matta:<version>, or $MATTA_IMAGE).")] = None,
    engine: Annotated[str | None, typer.Option(
        help="With --runner docker: docker or podman (default: a Docker engine that answers, else podman).")] = None,
) -> None:
    """Run the whole Kubeflow pipeline on this machine through kfp.local (one process or container per step)."""
    from matta_core.cli.errors import fail
    from matta_core.config import ConfigError
    from matta_core.image import ImageTagError
    from matta_core.tracking.outage import TrackingUnavailable
    from pipelines.container_runner import ContainerRunError
    from pipelines.local_runner import RUNNERS, PipelineFailed, run_pipeline
    from pipelines.preflight import PreflightError
    from pipelines.run_lock import RunFolderBusy

    if runner not in RUNNERS:
        typer.echo(f"error: --runner {runner!r} is not one of: {', '.join(RUNNERS)}", err=True)
        raise typer.Exit(2)
    if runner != "docker" and (image or engine):
        typer.echo("error: --image and --engine apply to --runner docker only", err=True)
        raise typer.Exit(2)
    run_config = load_config(config, set_)
    try:
        # The strict check for either runner; the docker runner recompiles the file with its image set.
        pipeline = None if package is None else _load_package(package)
        if runner == "docker":
            pipeline = None
        result = run_pipeline(run_config, track=tracking, enable_caching=cache, pipeline=pipeline, runner=runner,
                              image=image, package=package if runner == "docker" else None, engine=engine)
    except (ConfigError, PreflightError, ContainerRunError, ImageTagError, RunFolderBusy) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except PipelineFailed as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except TrackingUnavailable as error:  # the run started, then its server went away: like a failed step
        fail(error, 1)
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
        fail(error)
    return components.load_component_from_file(str(package))


ImageOption = Annotated[str | None, typer.Option(
    "--image", help="Container image of every task: a registry path with a version tag or a digest, e.g. "
                    "europe-docker.pkg.dev/PROJECT/REPO/matta:0.1.0 (default: $MATTA_IMAGE; the built-in "
                    "matta:<version> names no registry and is refused for a cluster).")]


@app.command("compile")
def compile_(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the pipeline YAML.")] = Path(
        "pipeline.yaml"),
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006
    image: ImageOption = None,
    gpu_image: Annotated[str | None, typer.Option(
        "--gpu-image", help="With --config: the image of tasks that request an accelerator (default: "
                            "cluster.gpu_image).")] = None,
    allow_local_image: Annotated[bool, typer.Option(
        "--allow-local-image",
        help="Skip the cluster check of the image name (registry host, immutable tag), for a YAML that only runs "
             "on this machine (`matta run --package`); the name still needs a tag other than latest.")] = False,
) -> None:
    """Compile the pipeline to KFP YAML and validate it strictly against the pipeline-spec schema.

    The YAML is for a cluster: every task's image must be one its nodes can pull and that names one build
    (--image or $MATTA_IMAGE); an image name that is refused exits with code 2 and writes nothing. With
    --config, the config's ``resources:`` and ``cluster:`` sections are compiled in (requests, limits,
    accelerators, retries, timeouts, Secret and ConfigMap references) and its values become the parameters'
    defaults; a config a cluster cannot run (local paths, no gs:// pipeline root) exits with code 2.
    """
    from matta_core.config import ConfigError
    from matta_core.image import ImageTagError, check_image_ref, default_image_tag
    from pipelines.code_version import code_version
    from pipelines.compile import PipelineSpecError, cluster_image, compile_pipeline
    from pipelines.preflight import PreflightError

    if config is not None or set_:
        from pipelines.cluster import compile_cluster_pipeline
        from pipelines.cluster_preflight import cluster_warnings

        try:
            run_config = load_config(config, set_)
            done = compile_cluster_pipeline(run_config, output, image=image, gpu_image=gpu_image)
        except (ConfigError, PreflightError, ImageTagError) as error:
            fail(error)
        except PipelineSpecError as error:
            fail(error, 1)
        for warning in cluster_warnings(run_config):
            typer.echo(f"warning: {warning}", err=True)
        typer.echo(f"wrote {output}: pipeline {done.spec.pipeline_info.name!r} for a cluster, image {done.image}"
                   f"{f', GPU image {done.gpu_image}' if done.gpu_image else ''}, pipeline root "
                   f"{run_config.cluster.pipeline_root}, code version {code_version()}; validated")
        return
    try:
        chosen = check_image_ref(image or default_image_tag()) if allow_local_image else cluster_image(image)
    except ImageTagError as error:
        fail(error)
    try:
        spec = compile_pipeline(output, image=chosen)
    except PipelineSpecError as error:
        fail(error, 1)
    typer.echo(f"wrote {output}: pipeline {spec.pipeline_info.name!r}, {len(spec.components)} components, "
               f"image {chosen}, code version {code_version()}; validated against the pipeline-spec schema")


@app.command()
def submit(
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006
    backend: Annotated[str, typer.Option(
        help="kfp: a Kubeflow Pipelines cluster (--host / --kube-context); vertex: Vertex AI Pipelines (--project, "
             "--region).")] = "kfp",
    host: Annotated[str | None, typer.Option(
        "--host", envvar="KF_PIPELINES_ENDPOINT",
        help="kfp: API/UI URL, e.g. http://localhost:8080 (default: reach KFP through the kube config's "
             "Kubernetes API).")] = None,
    namespace: Annotated[str | None, typer.Option(
        help="kfp: your profile namespace on a multi-user Kubeflow.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="KF_PIPELINES_TOKEN", help="kfp: bearer token for the API (e.g. a service-account token).")] = None,
    kube_context: Annotated[str | None, typer.Option(
        help="kfp, without --host: the kube config context to reach KFP through.")] = None,
    project: Annotated[str | None, typer.Option(help="vertex: Google Cloud project.")] = None,
    region: Annotated[str | None, typer.Option(help="vertex: Vertex AI region, e.g. europe-west4.")] = None,
    service_account: Annotated[str | None, typer.Option(
        help="vertex: service account the tasks run as.")] = None,
    network: Annotated[str | None, typer.Option(
        help="vertex: VPC to peer with, projects/NUMBER/global/networks/NAME.")] = None,
    label: Annotated[list[str], typer.Option(
        "--label", help="vertex: run label key=value (repeatable; lower-case letters, digits, _ and -).")] = [],  # noqa: B006
    experiment: Annotated[str | None, typer.Option(
        help="KFP experiment (default: the config's name), or the Vertex AI experiment to list the run under.")] = None,
    run_name: Annotated[str | None, typer.Option(help="Run name (default: <name>-<UTC time>).")] = None,
    cache: Annotated[bool | None, typer.Option(help="Override every task's step caching for this run.")] = None,
    image: ImageOption = None,
) -> None:
    """Compile the pipeline for a cluster and start one run of it, with the config's values as parameters.

    The config must be one a cluster can run (a gs:// cluster.pipeline_root, no local paths) and every task's
    image (--image, cluster.image or $MATTA_IMAGE) a registry path with a version tag or a digest; anything refused
    exits with code 2 before the cluster is contacted. The pipeline opens its own MLflow run on the cluster.
    """
    from matta_core.config import ConfigError
    from matta_core.image import ImageTagError
    from pipelines.cluster_preflight import cluster_warnings
    from pipelines.preflight import PreflightError
    from pipelines.submit import KfpTarget, submit_pipeline
    from pipelines.vertex import VertexError, submit_vertex, vertex_target

    run_config = load_config(config, set_)
    try:
        if backend == "kfp":
            _refuse_options("kfp", project=project, region=region, service_account=service_account,
                            network=network, label=label)
            target = KfpTarget(host, namespace, token, kube_context)
            done = submit_pipeline(run_config, target, experiment=experiment, run_name=run_name,
                                   enable_caching=cache, image=image)
            typer.echo(f"submitted: KFP run {done.kfp_run_id}"
                       + (f"\n  {done.kfp_run_url}" if done.kfp_run_url else ""))
        elif backend == "vertex":
            # --host and --token may come from the environment (KF_PIPELINES_*): not refused here.
            _refuse_options("vertex", namespace=namespace, kube_context=kube_context)
            where = vertex_target(project, region, service_account=service_account, network=network, labels=label)
            job = submit_vertex(run_config, where, run_name=run_name, experiment=experiment, enable_caching=cache,
                                image=image)
            typer.echo(f"submitted: Vertex AI pipeline job {job.name}\n  {job.url}")
        else:
            raise ValueError(f"--backend {backend!r}: choose kfp or vertex")
    except (ConfigError, PreflightError, ImageTagError, VertexError, ValueError) as error:
        fail(error)
    for warning in cluster_warnings(run_config):
        typer.echo(f"warning: {warning}", err=True)


def _refuse_options(backend: str, **given: object) -> None:
    """An option of the other backend is a mistake worth saying, not something to ignore silently."""
    wrong = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} do(es) not apply to --backend {backend}")
