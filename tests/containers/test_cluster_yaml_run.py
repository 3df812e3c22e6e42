"""The YAML a cluster would receive, run end to end in the project's image on this machine.

Compiled from a cluster config (resources, retries, timeouts, Secret and ConfigMap references, gs:// defaults),
then run by ``matta run --runner docker --package`` with a tiny config's parameters: the same tasks, the same
components, the same retry policies (kfp.local honours them; it ignores requests, limits and pod settings, which
`tests/kfp/test_cluster_contract.py` checks in the YAML). Training checkpoints go to ``train.checkpoint_dir``,
outside the task's output, as on a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from matta_core.config import PipelineConfig
from pipelines.cluster import compile_cluster_pipeline
from pipelines.local_runner import run_pipeline
from tests.containers.conftest import BuiltImage
from tests.kfp.helpers import small_config
from tests.kfp.test_cluster_contract import CLUSTER_CONFIG
from tests.mirror import MIRROR_DIR

pytestmark = [pytest.mark.slow, pytest.mark.container]


@pytest.mark.timeout(1200)
def test_the_cluster_yaml_runs_in_containers(image: BuiltImage, tmp_path: Path) -> None:
    cluster = PipelineConfig.parse({**CLUSTER_CONFIG, "train": {"device": "cpu"},
                                    "resources": {"train": {"cpu_request": "2", "cpu_limit": "2", "retries": 2}}})
    package = tmp_path / "cluster.yaml"
    compile_cluster_pipeline(cluster, package)
    spec = next(yaml.safe_load_all(package.read_text()))  # then the PlatformSpec (Secrets, ConfigMap, pods)
    steps = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]  # inside the ExitHandler
    assert steps["train-models"]["retryPolicy"]["maxRetryCount"] == 2

    checkpoints = tmp_path / "checkpoints"
    # A few hundred Banking77 rows (the Teacher runs in the image on an empty cache: most of this test's time);
    # 4 epochs of them are 13 steps, so training passes a checkpoint_every step (10) before its final checkpoint.
    tiny = PipelineConfig.parse(small_config(
        tmp_path, tmp_path / "cache", widths=[[96], [32]],
        data={"mirror_dir": str(MIRROR_DIR), "limit_train_rows": 400, "limit_test_rows": 200},
        train={"epochs": 4, "num_threads": 1, "lr": 1e-2, "baselines": ["ce_only"], "checkpoint_every": 10,
               "checkpoint_dir": str(checkpoints)}))
    result = run_pipeline(tiny, runner="docker", image=image.name, package=package)

    report = json.loads((result.report_dir / "report.json").read_text())
    assert {r["name"] for r in report["models"]} == {"96", "student-32", "ce_only-32"}
    assert result.release_summary["status"] == "gated"
    [run_dir] = list(result.pipeline_root.glob("matta-*"))
    # The cluster YAML's own tasks ran: the first task, the one evaluation task, the exit task.
    assert {"start-run", "extract-and-evaluate", "end-run"} <= {p.name for p in run_dir.rglob("*") if p.is_dir()}
    # Checkpoints outside the train task's output, keyed on its inputs, one folder per arm.
    [key_dir] = [p for p in checkpoints.iterdir() if p.is_dir()]
    assert {"matta", "ce_only"} <= {p.name for p in key_dir.iterdir() if p.is_dir()}
    assert list((key_dir / "matta").glob("step-*"))
