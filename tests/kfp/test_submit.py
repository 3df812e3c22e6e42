"""`submit_pipeline` hands the cluster a package whose every task runs in the chosen image."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from matta_core.config import PipelineConfig
from matta_core.image import IMAGE_ENV
from pipelines import submit
from pipelines.compile import validate_pipeline_yaml
from tests.kfp.helpers import small_config


class RecordingClient:
    """Stands in for `kfp.Client` at the network boundary: keeps what would be uploaded."""

    def __init__(self) -> None:
        self.packages: list[dict[str, Any]] = []

    def create_run_from_pipeline_package(self, package: str, **kwargs: Any) -> SimpleNamespace:
        validate_pipeline_yaml(package)  # the package the cluster would get is valid
        self.packages.append({"doc": yaml.safe_load(Path(package).read_text()), **kwargs})
        return SimpleNamespace(run_id="run-1")


@pytest.mark.parametrize("from_env", [False, True], ids=["--image", "MATTA_IMAGE"])
def test_submit_sends_the_image_in_every_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_env: bool) -> None:
    image = "europe-docker.pkg.dev/proj/repo/matta@sha256:" + "ab" * 32
    client = RecordingClient()
    monkeypatch.setattr(submit, "connect", lambda host: client)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if from_env:
        monkeypatch.setenv(IMAGE_ENV, image)
    else:
        monkeypatch.delenv(IMAGE_ENV, raising=False)
    config = PipelineConfig.model_validate(small_config(tmp_path, tmp_path / "cache"))
    done = submit.submit_pipeline(config, "http://kfp.example", image=None if from_env else image)
    assert done.kfp_run_id == "run-1"
    [sent] = client.packages
    executors = sent["doc"]["deploymentSpec"]["executors"]
    assert len(executors) == 8
    assert {e["container"]["image"] for e in executors.values()} == {image}
