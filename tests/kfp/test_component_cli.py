"""`matta component <step>`: each step from folders on disk, in its own process, with the pipeline's layout."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from matta_core.families.classifier.extract import load_extracted
from matta_core.tracking import pipeline_run, resolve_tracking_uri
from tests.kfp.helpers import run_cli, small_config, write_config


def _step(cwd: Path, config: Path, *args: str) -> str:
    done = run_cli("component", *args, "--config", str(config), cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, teacher_cache: Path) -> tuple[Path, Path, str]:
    """prepare -> teacher -> train, each by `matta component` in its own process; returns (folder, config, output
    of the train command)."""
    root = tmp_path_factory.mktemp("component-cli")
    config = write_config(root / "c.yaml", small_config(root, teacher_cache))
    d = root / "steps"
    _step(root, config, "prepare", "--prepared", str(d / "prepared"))
    _step(root, config, "teacher", "--prepared", str(d / "prepared"), "--teacher", str(d / "teacher"))
    out = _step(root, config, "train", "--prepared", str(d / "prepared"), "--teacher", str(d / "teacher"),
                "--trained", str(d / "trained"))
    return d, config, out


@pytest.mark.slow
def test_every_step_from_files_on_disk(tmp_path: Path, trained: tuple[Path, Path, str]) -> None:
    d, config, train_output = trained
    assert "baseline models: baselines/kd, baselines/ce_only" in train_output
    assert (d / "trained" / "nested" / "model.safetensors").is_file()
    assert json.loads((d / "trained.metrics.json").read_text())["matta_steps"] > 10

    out = _step(tmp_path, config, "extract", "--trained", str(d / "trained"), "--prepared", str(d / "prepared"),
                "--widths", "96", "--model", str(d / "m96"))
    assert "parity_max_abs_diff = 0" in out
    _, meta = load_extracted(d / "m96")
    assert meta.hidden_widths == (96,) and meta.metadata["teacher_cache_key"]

    _step(tmp_path, config, "evaluate", "--model", str(d / "m96"), "--prepared", str(d / "prepared"),
          "--evaluation", str(d / "e96"))
    _step(tmp_path, config, "evaluate", "--model", str(d / "trained"), "--model-subdir", "baselines/kd",
          "--prepared", str(d / "prepared"), "--evaluation", str(d / "ekd"))
    _step(tmp_path, config, "report", "--evaluation", str(d / "e96"), "--evaluation", str(d / "ekd"),
          "--teacher", str(d / "teacher"), "--report", str(d / "report"))
    report = json.loads((d / "report" / "report.json").read_text())
    assert {r["name"] for r in report["models"]} == {"96", "kd-32"}
    assert "data:image/png;base64," in (d / "report.md").read_text()

    # No --parent-run-id: no tracking, so no registry; the release step says so and succeeds.
    done = run_cli("component", "release", "--evaluation", str(d / "e96"), "--evaluation", str(d / "ekd"),
                   "--model", str(d / "m96"), "--trained", str(d / "trained"), "--teacher", str(d / "teacher"),
                   "--prepared", str(d / "prepared"), "--release", str(d / "release"), "--config", str(config),
                   cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "release skipped: tracking is off" in done.stderr and "skipped = 1" in done.stdout
    assert json.loads((d / "release" / "release.json").read_text())["status"] == "skipped"
    assert "tracking is off" in (d / "release.md").read_text()


@pytest.mark.slow
def test_a_component_attaches_to_a_given_parent_run(tmp_path: Path, trained: tuple[Path, Path, str]) -> None:
    """`--parent-run-id`: the step's child run lands under that run, with the extracted model logged."""
    d, config, _ = trained
    uri = resolve_tracking_uri(None, tmp_path)
    with pipeline_run(uri, "by-hand", "by-hand") as parent:
        pass
    done = run_cli("component", "extract", "--trained", str(d / "trained"), "--prepared", str(d / "prepared"),
                   "--widths", "32", "--model", str(tmp_path / "m32"), "--parent-run-id", parent.run_id,
                   "--tracking-uri", uri, "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    [child] = client.search_runs([parent.experiment_id], f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert child.info.run_name == "extract-32" and child.info.status == "FINISHED"
    mlflow.set_tracking_uri(uri)
    [model] = mlflow.search_logged_models(experiment_ids=[parent.experiment_id], output_format="list")
    assert model.name == "student-32" and model.source_run_id == child.info.run_id
