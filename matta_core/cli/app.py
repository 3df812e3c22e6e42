"""The root `matta` Typer app; subcommand modules attach their commands to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="MatTA: train elastic Student models (Teacher -> TA -> Student) in one run and extract every width.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
