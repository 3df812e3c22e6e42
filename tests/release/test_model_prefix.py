"""Registered-model names follow the run's `name` unless `release.model_prefix` is set: two pipelines sharing one
MLflow server keep their own champions. The value is resolved when the config loads, so `matta show-config` and the
pipeline's parameters show the name actually used."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.config import PipelineConfig, ReleaseSection
from matta_core.config_base import load_section
from matta_core.release.config import ReleaseConfig


def _show_config(*sets: str) -> tuple[int, str]:
    args = ["show-config"]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(app, args, env={"MATTA_DEBUG": None})
    return result.exit_code, result.output


@pytest.mark.parametrize(("sets", "prefix"), [
    ((), "matta-banking77"),  # the default run's name
    (("name=support-tickets",), "support-tickets"),
    (("name=support-tickets", "release.model_prefix=shared-bank"), "shared-bank"),
])
def test_show_config_shows_the_resolved_prefix(sets: tuple[str, ...], prefix: str) -> None:
    code, output = _show_config(*sets)
    assert code == 0, output
    assert yaml.safe_load(output)["release"]["model_prefix"] == prefix


def test_two_runs_get_their_own_registered_models_in_what_the_release_step_reads() -> None:
    # `release_json` (the pipeline parameter) is the section's JSON; the release component parses it back.
    sections = [load_section(ReleaseSection, PipelineConfig.parse({"name": name}).release.model_dump_json(), "release")
                for name in ("tickets-a", "tickets-b")]
    assert [s.registry_prefix() for s in sections] == ["tickets-a", "tickets-b"]


def test_a_name_that_cannot_prefix_a_registered_model_is_refused_naming_both_fields() -> None:
    code, output = _show_config("name=support tickets")
    assert code == 2
    assert output.strip() == (
        "error: config is invalid:\n  release: Value error, model_prefix is not set, so registered models are named "
        "after the run's name, and name 'support tickets' cannot begin one (letters, digits, '_', '.' and '-', "
        "starting with a letter or digit): rename the run, or set release.model_prefix")
    # Either way out works: an explicit prefix, or a run that registers nothing.
    assert _show_config("name=support tickets", "release.model_prefix=tickets")[0] == 0
    code, output = _show_config("name=support tickets", "release.enabled=false")
    assert code == 0 and yaml.safe_load(output)["release"]["model_prefix"] is None


def test_a_release_section_without_a_run_name_says_what_is_missing() -> None:
    assert ReleaseConfig(model_prefix="bank").registry_prefix() == "bank"
    with pytest.raises(ValueError, match=r"release\.model_prefix is not set"):
        ReleaseConfig.parse({}).registry_prefix()
