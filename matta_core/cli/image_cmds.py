"""`matta image build`: the project's container image (the one every KFP component runs in), or with
``--mlflow-server`` the MLflow tracking server's image that ``infra/mlflow`` runs (``docker/mlflow-server``).

Exit codes: 0 built (and pushed); 2 nothing was built or tagged: a name KFP's cache cannot trust, a bad option,
no engine or an engine that is not running, a failed build step (its last lines are shown), a refused push.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matta_core.cli.app import app
from matta_core.cli.errors import fail

image_app = typer.Typer(help="The container image the pipeline's components run in.", no_args_is_help=True)
app.add_typer(image_app, name="image")


@image_app.command("build")
def build(
    tag: Annotated[str | None, typer.Option(
        "--tag", "-t", help="Image name with a version tag (default: matta:<package version>, or $MATTA_IMAGE; "
                            "--mlflow-server: mlflow-server:<MLflow version>). ':latest' and untagged names are "
                            "refused: KFP caches steps on the image name.")] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="Build docker/Dockerfile.gpu (CUDA torch) instead.")] = False,
    mlflow_server: Annotated[bool, typer.Option(
        "--mlflow-server", help="Build the MLflow tracking server of infra/mlflow (docker/mlflow-server) instead.",
    )] = False,
    push: Annotated[bool, typer.Option("--push", help="Push after building (the tag needs a registry path).")] = False,
    context: Annotated[Path | None, typer.Option(
        exists=True, file_okay=False, help="Build context: a matta checkout (default: this one).")] = None,
    engine: Annotated[str | None, typer.Option(
        help="docker or podman (default: a Docker engine that answers, else podman).")] = None,
    base: Annotated[str, typer.Option(
        help="Base image: auto (the pinned python image if its registry answers, else one built from Debian "
             "packages), registry, debian, or an image name the engine has.")] = "auto",
    host_inputs: Annotated[str, typer.Option(
        help="Mount this machine's pip configuration and CA bundle into the build's RUN steps (podman): "
             "auto, on or off. Never copied into the image.")] = "auto",
    native: Annotated[bool, typer.Option(
        "--native", help="Build for this engine's architecture instead of linux/amd64 (KFP nodes).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary (and a failure's last "
                                                              "lines).")] = False,
) -> None:
    """Build (and optionally push) the image with this machine's container engine."""
    from matta_core.image import (
        DEFAULT_PLATFORM,
        ImageBuildError,
        ImageTagError,
        Variant,
        default_image_tag,
        default_mlflow_server_tag,
    )
    from matta_core.imagebuild.build import build as build_image
    from matta_core.imagebuild.engine import find_engine
    from matta_core.imagebuild.push import push_image
    from pipelines.code_version import SOURCE_PACKAGES, code_version

    if host_inputs not in ("auto", "on", "off"):
        typer.echo(f"error: --host-inputs {host_inputs!r} is not one of: auto, on, off", err=True)
        raise typer.Exit(2)
    if gpu and mlflow_server:
        typer.echo("error: --gpu and --mlflow-server name two different images: give one", err=True)
        raise typer.Exit(2)
    variant: Variant = "mlflow-server" if mlflow_server else "gpu" if gpu else "cpu"
    root = (context or Path(__file__).resolve().parents[2]).resolve()
    try:
        name = tag or (default_mlflow_server_tag(root) if mlflow_server else default_image_tag())
        chosen = find_engine(engine)
        # The service image holds none of matta's code: no code version to record.
        version = None if mlflow_server else code_version([root / package for package in SOURCE_PACKAGES])
        built = build_image(name, code_version=version, variant=variant, context=root,
                            engine=chosen, base=base, host_inputs_mode=host_inputs,
                            platform=None if native else DEFAULT_PLATFORM, quiet=quiet)
        if push:
            push_image(chosen, name)
    except (ImageTagError, ImageBuildError, FileNotFoundError) as error:
        fail(error)
    if mlflow_server:
        typer.echo(f"image {built.name} ready ({built.size_bytes / 1e9:.2f} GB); infra/mlflow runs it "
                   "(infra/README.md)")
        return
    typer.echo(f"image {built.name} ready ({built.size_bytes / 1e9:.2f} GB, code version {built.code_version}); "
               f"run the pipeline in it: matta run --runner docker --image {built.name}")
