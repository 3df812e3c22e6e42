"""What `matta run --runner docker` hands its containers, decided before any engine is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from matta_core.config import PipelineConfig
from pipelines.container_runner import absolute_local_paths, forwarded_environment, host_paths


def test_paths_reach_containers_resolved_and_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path through '..' or a symlink names nothing inside a container, where only the mounts exist."""
    (tmp_path / "real" / "data").mkdir(parents=True)
    (tmp_path / "real" / "data" / "intents.csv").write_text("text,label\nhi,greet\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "mirror").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("MATTA_DATA_MIRROR", str(tmp_path / "work" / ".." / "mirror"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")  # never forwarded: tasks get their own
    config = PipelineConfig.parse({
        "data": {"source": str(tmp_path / "link" / "data" / "intents.csv"), "text_column": "text",
                 "label_column": "label"},
        "cache_dir": "../cache", "output_dir": str(tmp_path / "out"), "release": {"enabled": False},
        "train": {"checkpoint_dir": "../checkpoints"},
    })
    ready = absolute_local_paths(config)
    assert ready.data.source == str(tmp_path / "real" / "data" / "intents.csv")
    assert ready.cache_dir == str(tmp_path / "cache")
    assert ready.train.checkpoint_dir == str(tmp_path / "checkpoints")
    environment = forwarded_environment()
    assert environment["MATTA_DATA_MIRROR"] == str(tmp_path / "mirror")
    assert "MLFLOW_TRACKING_URI" not in environment
    mounts = {str(p.path): p.writable for p in host_paths(ready, environment)}
    assert mounts == {str(tmp_path / "real" / "data"): False, str(tmp_path / "mirror"): False,
                      str(tmp_path / "cache"): True, str(tmp_path / "checkpoints"): True}


def test_a_folder_inside_a_mounted_one_is_not_mounted_twice(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "test.csv").write_text("text,label\nhi,greet\n")
    (tmp_path / "data" / "train.csv").write_text("text,label\nhi,greet\n")
    config = PipelineConfig.parse({
        "data": {"source": str(tmp_path / "data" / "train.csv"), "test_source": str(tmp_path / "data" / "sub" /
                                                                                     "test.csv"),
                 "mirror_dir": str(tmp_path / "data")},
        "cache_dir": str(tmp_path / "data" / "cache"), "output_dir": str(tmp_path / "out"),
        "release": {"enabled": False},
    })
    mounts = {str(p.path): p.writable for p in host_paths(absolute_local_paths(config), {})}
    # The cache needs write access the data folder's read-only mount does not give: mounted on its own.
    assert mounts == {str(tmp_path / "data"): False, str(tmp_path / "data" / "cache"): True}
