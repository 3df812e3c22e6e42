"""`matta demo` and `matta show-config`: the in-process run and the configuration it uses."""

from __future__ import annotations

from typing import Annotated

import typer

from matta_core.cli.app import app
from matta_core.cli.common import ConfigOption, SetOption, load_config


@app.command()
def demo(
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006 - typer reads the default, it is never mutated
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run every step in this process (no KFP): prepare, Teacher cache, train, extract, evaluate, report."""
    from matta_core.workflow import run_local

    run_config = load_config(config, set_)
    run = run_local(run_config, progress=progress)
    typer.echo(f"\nreport: {run.report_path}")
    typer.echo("seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()))
    for record in run.report["models"]:
        typer.echo(f"  {record['name']:>14}  accuracy {record['accuracy']:.2%}  params {record['params']:,}")


@app.command("show-config")
def show_config(config: ConfigOption = None, set_: SetOption = []) -> None:  # noqa: B006
    """Print the validated run configuration (defaults filled in) as YAML."""
    import yaml

    typer.echo(yaml.safe_dump(load_config(config, set_).model_dump(), sort_keys=False))
