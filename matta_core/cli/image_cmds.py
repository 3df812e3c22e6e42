"""`matta image build`: the project's container image (the one every KFP component runs in).

Exit codes: 0 built (and pushed), 2 a name KFP's cache cannot trust or a bad option (nothing built), 1 the engine
is unreachable or the build or push failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matta_core.cli.app import app

image_app = typer.Typer(help="The container image the pipeline's components run in.", no_args_is_help=True)
app.add_typer(image_app, name="image")


@image_app.command("build")
def build(
    tag: Annotated[str | None, typer.Option(
        "--tag", "-t", help="Image name with a version tag (default: matta:<package version>, or $MATTA_IMAGE). "
                            "':latest' and untagged names are refused: KFP caches steps on the image name.")] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="Build docker/Dockerfile.gpu (CUDA torch) instead.")] = False,
    push: Annotated[bool, typer.Option("--push", help="Push after building (the tag needs a registry path).")] = False,
    context: Annotated[Path | None, typer.Option(
        exists=True, file_okay=False, help="Build context: a matta checkout (default: this one).")] = None,
    native: Annotated[bool, typer.Option(
        "--native", help="Build for this engine's architecture instead of linux/amd64 (KFP nodes).")] = False,
) -> None:
    """Build (and optionally push) the image with the Docker Engine through the docker SDK."""
    from matta_core.image import DEFAULT_PLATFORM, ImageBuildError, ImageTagError, build_image, default_image_tag

    try:
        name = tag or default_image_tag()
        build_image(name, variant="gpu" if gpu else "cpu", context=context, push=push,
                    platform=None if native else DEFAULT_PLATFORM)
    except (ImageTagError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except ImageBuildError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"image {name} ready; pipelines use it when MATTA_IMAGE={name} (or it is the default name)")
