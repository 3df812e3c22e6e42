"""Options and helpers shared by the `matta` subcommands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from matta_core.cli.errors import fail
from matta_core.config import ConfigError, PipelineConfig


def parse_overrides(values: list[str]) -> dict[str, object]:
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


def load_config(config: Path | None, overrides: list[str]) -> PipelineConfig:
    """The validated run configuration of `--config` and `--set`; a bad one is reported as one error, exit 2."""
    try:
        return PipelineConfig.load(config, parse_overrides(overrides))
    except ConfigError as error:
        fail(error)


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML/JSON run configuration.")]
SetOption = Annotated[list[str], typer.Option("--set", help="Override a config field: --set train.epochs=3.")]


