"""The root `matta` Typer app; subcommand modules attach their commands to it."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from matta_core.cli.errors import DEBUG_ENV, MattaGroup

app = typer.Typer(
    cls=MattaGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option(
        "--debug", envvar=DEBUG_ENV,
        help="Show full tracebacks, here and in every pipeline step (sets MATTA_DEBUG=1 for them).")] = False,
) -> None:
    """MatTA: train elastic Student models (Teacher -> TA -> Student) in one run and extract every width."""
    if debug:
        # The environment, not a flag on this process: pipeline steps are separate processes that inherit it.
        os.environ[DEBUG_ENV] = "1"
