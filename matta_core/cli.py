"""The `matta` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from matta_core.config import ConfigError, PipelineConfig

app = typer.Typer(help="MatTA: train elastic Student models (Teacher -> TA -> Student) and extract every width.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def _parse_overrides(values: list[str]) -> dict[str, object]:
    """`key.sub=value` pairs; values are read as JSON when they parse (numbers, lists), else as strings."""
    overrides: dict[str, object] = {}
    for item in values:
        if "=" not in item:
            raise typer.BadParameter(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def _load_config(config: Path | None, overrides: list[str]) -> PipelineConfig:
    try:
        return PipelineConfig.load(config, _parse_overrides(overrides))
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML/JSON run configuration.")]
SetOption = Annotated[list[str], typer.Option("--set", help="Override a config field: --set train.epochs=3.")]


@app.command()
def demo(
    config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006 - typer reads the default, it is never mutated
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run every step in this process (no KFP): prepare, Teacher cache, train, extract, evaluate, report."""
    from matta_core.workflow import run_local

    run_config = _load_config(config, set_)
    run = run_local(run_config, progress=progress)
    typer.echo(f"\nreport: {run.report_path}")
    typer.echo("seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()))
    for record in run.report["models"]:
        typer.echo(f"  {record['name']:>14}  accuracy {record['accuracy']:.2%}  params {record['params']:,}")


@app.command("show-config")
def show_config(config: ConfigOption = None, set_: SetOption = []) -> None:  # noqa: B006
    """Print the validated run configuration (defaults filled in) as YAML."""
    import yaml

    typer.echo(yaml.safe_dump(_load_config(config, set_).model_dump(), sort_keys=False))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
