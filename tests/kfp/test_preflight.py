"""Bad runs fail before any step runs: exit code 2, a message naming the field, and no step output on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.config import ConfigError, TrainSection
from matta_core.image import IMAGE_ENV
from matta_core.steps.tracked import load_section, parse_widths
from tests.kfp.helpers import closed_port, small_config, write_config

runner = CliRunner()
CLUSTER_IMAGE = "europe-docker.pkg.dev/proj/repo/matta:0.1.0"


def _bad_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    return [
        (["--set", "widths=[[2048]]"], "widths: Value error, entry 0 [2048]: layer blocks.0: asked width 2048"),
        (["--set", "train.epochs=-1"], "train.epochs: Input should be greater than 0"),
        (["--set", f"data.source={tmp_path / 'missing.csv'}"], f"data.source: no file at '{tmp_path / 'missing.csv'}'"),
        (["--set", f"data.mirror_dir={tmp_path / 'no-mirror'}"], "data.mirror_dir:"),
        (["--set", f"tracking_uri=http://127.0.0.1:{closed_port()}"], "is not reachable (connection refused)"),
    ]


@pytest.mark.parametrize("case", range(5), ids=["width", "budget", "data-file", "mirror", "tracking"])
def test_run_refuses_bad_values_before_any_step(  # type: ignore[no-untyped-def]
    tmp_path: Path, case: int, fault_record
) -> None:
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "run.yaml", small_config(tmp_path, cache))
    overrides, message = _bad_cases(tmp_path)[case]
    result = runner.invoke(app, ["run", "--config", str(config), *overrides])
    assert result.exit_code == 2, result.output
    assert message in result.output
    out = tmp_path / "run"
    # Nothing ran: no pipeline root (where every step writes), no report, no Teacher cache.
    assert not (out / "kfp").exists() and not (out / "report").exists() and not cache.exists()
    if case < 4:  # checks that come before the tracking store leave no output folder at all
        assert not out.exists()
    [said] = [line for line in result.output.splitlines() if message in line]
    if case == 2:
        fault_record("`matta run` with a data file that is not there", fault="data.source names a missing file",
                     sees=said, kept="nothing run or written (no output folder); exit 2 before any step")
    if case == 4:
        fault_record("`matta run` against a dead tracking server", fault="tracking_uri names a server that does "
                     "not answer (connection refused)", sees=said,
                     kept="nothing run (no step output, no Teacher cache); exit 2 before any step")


def _cluster_config(tmp_path: Path, **overrides: object) -> Path:
    """A config a cluster can run: registered data, gs:// cache and pipeline root."""
    return write_config(tmp_path / "run.yaml", {
        "name": "matta-cluster", "cache_dir": "gs://team-bucket/cache", "output_dir": str(tmp_path / "run"),
        "cluster": {"pipeline_root": "gs://team-bucket/root"}, **overrides})


def test_submit_to_an_unreachable_host_says_so(tmp_path: Path) -> None:
    config = _cluster_config(tmp_path)
    host = f"http://127.0.0.1:{closed_port()}"
    result = runner.invoke(app, ["submit", "--host", host, "--config", str(config), "--image", CLUSTER_IMAGE])
    assert result.exit_code == 2, result.output
    assert f"the KFP API at {host} is not reachable" in result.output
    assert "Connection refused" in result.output


def test_submit_refuses_laptop_settings_naming_each_field(tmp_path: Path) -> None:
    config = write_config(tmp_path / "run.yaml", small_config(tmp_path, tmp_path / "cache", tracking_uri="sqlite:///x.db"))
    result = runner.invoke(app, ["submit", "--host", "http://127.0.0.1:1", "--config", str(config),
                                 "--image", CLUSTER_IMAGE])
    assert result.exit_code == 2, result.output
    for field in ("cluster.pipeline_root", "cache_dir", "data.mirror_dir", "tracking_uri", "cluster.mlflow_secret"):
        assert field in result.output, field
    assert "not reachable" not in result.output  # refused before the host is tried


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], f"the default image (no --image given, {IMAGE_ENV} unset): image 'matta:"),
        (["--image", "matta:0.1.0"], "--image: image 'matta:0.1.0' is not fit for a cluster: it names no registry"),
        (["--image", "europe-docker.pkg.dev/p/r/matta:main"], "tag 'main' is a moving name"),
    ],
    ids=["default", "no-registry", "moving-tag"],
)
def test_submit_refuses_an_image_a_cluster_cannot_use_before_contacting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.delenv(IMAGE_ENV, raising=False)
    # An unreachable host: the image is refused before it is tried.
    config = _cluster_config(tmp_path)
    result = runner.invoke(app, ["submit", "--host", f"http://127.0.0.1:{closed_port()}", "--config", str(config),
                                 *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "pass --image REGISTRY/PATH/matta:VERSION" in result.output
    assert "not reachable" not in result.output
    assert not (tmp_path / "run").exists()


def test_a_step_validates_its_config_section_by_field() -> None:
    with pytest.raises(ConfigError, match=r"train\.epochs: Input should be greater than 0"):
        load_section(TrainSection, '{"epochs": -1}', "train")
    with pytest.raises(ConfigError, match=r"train\.optimiser: Extra inputs are not permitted"):
        load_section(TrainSection, '{"optimiser": "adam"}', "train")


def test_widths_from_a_pipeline_parameter_are_whole_numbers() -> None:
    assert parse_widths([96.0, 32]) == [96, 32]  # KFP hands list items over as floats
    with pytest.raises(ConfigError, match="whole number"):
        parse_widths([96.5])
