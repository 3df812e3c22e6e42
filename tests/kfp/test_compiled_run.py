"""The compiled YAML itself (not the Python pipeline function) runs under kfp.local, through the CLI, tracked in
the embedded sqlite store by default."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml

from tests.kfp.helpers import run_cli, small_config, write_config


@pytest.mark.slow
def test_compiled_yaml_runs_under_kfp_local_with_the_sqlite_default(tmp_path: Path, teacher_cache: Path) -> None:
    package = tmp_path / "pipeline.yaml"
    # Run here by kfp.local's subprocess runner, which ignores the image: the cluster's image check is waived.
    compiled = run_cli("compile", "--output", str(package), "--allow-local-image", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    # Make sure the run below executes the YAML: its code version is a marker nothing else could produce.
    marker = "0.0.0+src.compiled-yaml-marker"
    text = package.read_text()
    steps = yaml.safe_load(text)["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    version = steps["prepare-data"]["inputs"]["parameters"]["code_version"]
    package.write_text(text.replace(version["runtimeValue"]["constant"], marker))

    # Without the ce_only baseline the release has no reference: it is switched off (and must then stay silent).
    config = small_config(tmp_path, teacher_cache, widths=[[256], [32]],
                          train={"epochs": 4, "num_threads": 1, "lr": 1e-2, "baselines": ["kd"]},
                          release={"enabled": False})
    result = run_cli("run", "--package", str(package), "--config", str(write_config(tmp_path / "c.yaml", config)),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]

    out = tmp_path / "run"
    db = out / "mlflow.db"
    assert f"view with: mlflow ui --backend-store-uri sqlite:///{db}" in result.stdout
    assert f"report: {out / 'report' / 'report.html'}" in result.stdout
    assert (out / "report" / "pareto.png").is_file()
    assert f"release: skipped, see {out / 'release' / 'gate_report.md'}" in result.stdout
    assert "release.enabled is false" in (out / "release" / "gate_report.md").read_text()

    client = mlflow.MlflowClient(f"sqlite:///{db}")
    [experiment] = [e for e in client.search_experiments() if e.name == config["name"]]
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("matta.run_kind") == "pipeline"]
    steps = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(steps) == {"prepare", "teacher", "train", "extract-256", "extract-32", "evaluate-ta-256",
                          "evaluate-student-32", "evaluate-kd-32", "report"}
    assert {r.data.tags["matta.code.version"] for r in steps.values()} == {marker}
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    logged = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert {m.name for m in logged} == {"ta-256", "student-32", "kd-32"}
    assert client.search_registered_models() == []  # the release was off: nothing registered
